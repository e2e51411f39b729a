//! Photos and documents on work orders, on both backends: types are told by
//! content, sizes are limited, the public sees only copies without location
//! metadata, and scope applies to every file.

use crate::{
    both_backends,
    helpers::*,
    orders::{act, act_ok, report, setup, staff_order},
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// 37°54′N 112°36′E, where the photo was taken.
const LAT: f64 = 37.9;
const LON: f64 = 112.6;

/// A phone photo: a JPEG whose EXIF carries a GPS position.
pub fn photo_with_gps(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(120, 90, |x, y| image::Rgb([(x * 2) as u8, (y * 2) as u8, seed]));
    let mut jpeg = vec![];
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)).unwrap();
    fengqiao::attachments::exif::insert_into_jpeg(&jpeg, LAT, LON, 1)
}

/// The EXIF segment as it sits in the original.
fn gps_segment() -> Vec<u8> {
    fengqiao::attachments::exif::segment(LAT, LON, 1)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A `multipart/form-data` body with one part per (field, file name, bytes).
pub fn multipart(files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----fq-test-boundary-7d2c";
    let mut body = vec![];
    for (field, name, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads files to a path, as a bearer (staff) or anonymously (portal).
pub async fn upload(app: &TestApp, path: &str, token: Option<&str>, files: &[(&str, &str, &[u8])]) -> Resp {
    let (ct, body) = multipart(files);
    let mut req = app.client.post(format!("{}{path}", app.addr)).header("content-type", ct).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
}

/// Downloads raw bytes.
pub async fn fetch(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(format!("{}{path}", app.addr));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.bytes().await.unwrap().to_vec())
}

/// Every file under the data directory's attachments folder.
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = vec![];
    walk(&app.data_dir.join("attachments"), &mut out);
    out
}

both_backends!(staff_keep_the_original_and_the_public_copy_has_no_gps, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0303").await;
    let original = photo_with_gps(1);
    let r = upload(
        &app,
        &format!("/api/v1/orders/{id}/attachments"),
        Some(&l.worker),
        &[("file", "现场照片.JPG", &original)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let a = &r.body[0];
    assert_eq!(a["kind"], "image");
    assert_eq!(a["mime"], "image/jpeg");
    assert_eq!(a["name"], "现场照片.JPG");
    assert_eq!(a["size"], original.len());
    assert_eq!((a["width"].as_i64(), a["height"].as_i64()), (Some(120), Some(90)));
    assert_eq!(a["has_thumbnail"], true);
    assert_eq!(a["public"], false, "a staff photo is internal until it is a result");
    assert!(a.get("sha256").is_none());
    let aid = a["id"].as_i64().unwrap();

    // On disk under the data directory, by content hash, with its copies.
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&original));
    let path = app.data_dir.join("attachments").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert_eq!(stored_files(&app).len(), 3, "original, public copy, thumbnail");

    // Staff in scope get the original, metadata and all.
    let (status, headers, bytes) = fetch(&app, &format!("/api/v1/attachments/{aid}"), Some(&l.centre)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/jpeg");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        format!("inline; filename=\"attachment-{aid}.JPG\"; filename*=UTF-8''%E7%8E%B0%E5%9C%BA%E7%85%A7%E7%89%87.JPG")
    );
    assert_eq!(bytes, original);
    assert!(contains(&bytes, &gps_segment()), "the original keeps its GPS position");
    // Reading an original is recorded; public copies and thumbnails are not.
    let reads = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from audit_log where action = 'attachment.original' and object_id = $1",
        )
        .bind(aid.to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
    };
    assert_eq!(reads().await, 1);

    // The public copy and the thumbnail are re-encoded without any EXIF.
    for variant in ["public", "thumb"] {
        let (status, headers, bytes) =
            fetch(&app, &format!("/api/v1/attachments/{aid}?variant={variant}"), Some(&l.centre)).await;
        assert_eq!(status, StatusCode::OK, "{variant}");
        assert_eq!(headers["content-type"], "image/jpeg");
        assert!(bytes.starts_with(&[0xff, 0xd8, 0xff]), "{variant} is a JPEG");
        assert!(!contains(&bytes, b"Exif"), "{variant} has no EXIF");
        assert!(!contains(&bytes, &gps_segment()[10..]), "{variant} has no GPS");
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.width() <= 320 || variant == "public");
    }
    assert_eq!(reads().await, 1);
    let bad = app.get(&format!("/api/v1/attachments/{aid}?variant=raw"), &l.centre).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The order lists it; so does the order view.
    let list = app.get(&format!("/api/v1/orders/{id}/attachments"), &l.centre).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    assert_eq!(detail.body["attachments"][0]["id"], aid);
    assert_eq!(detail.body["attachments"][0]["event_seq"], Value::Null);

    // A document is kept as it is: no copies, downloaded, never inline.
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let r =
        upload(&app, &format!("/api/v1/orders/{id}/attachments"), Some(&l.worker), &[("file", "核查表", pdf)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body[0]["kind"], "document");
    assert_eq!(r.body[0]["name"], "核查表.pdf", "the name tells the real type");
    assert_eq!(r.body[0]["thumb_url"], Value::Null);
    let doc = r.body[0]["id"].as_i64().unwrap();
    let (status, headers, bytes) = fetch(&app, &format!("/api/v1/attachments/{doc}"), Some(&l.worker)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    assert_eq!(bytes, pdf);
    let (status, _, _) = fetch(&app, &format!("/api/v1/attachments/{doc}?variant=thumb"), Some(&l.worker)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same photo twice is stored once.
    let r =
        upload(&app, &format!("/api/v1/orders/{id}/attachments"), Some(&l.worker), &[("file", "again.jpg", &original)])
            .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(stored_files(&app).len(), 4);
});

both_backends!(content_decides_the_type_and_refusals_leave_nothing, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0303").await;
    let path = format!("/api/v1/orders/{id}/attachments");
    for (name, bytes) in [
        ("x.jpg", b"just some text, not a photo".as_slice()),
        ("invoice.pdf", b"<html><script>alert(1)</script></html>".as_slice()),
        ("logo.png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".as_slice()),
        ("drawing.svg.png", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".as_slice()),
    ] {
        let r = upload(&app, &path, Some(&l.worker), &[("file", name, bytes)]).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {:?}", r.body);
        assert_eq!(r.code(), "attachment.type_unsupported");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("与文件名无关"));
    }
    // A JPEG header on a broken body is not a photo.
    let mut broken = photo_with_gps(2);
    broken.truncate(300);
    let r = upload(&app, &path, Some(&l.worker), &[("file", "broken.jpg", &broken)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "attachment.image_unreadable");
    // One bad file in a batch refuses the batch.
    let good = photo_with_gps(3);
    let r = upload(&app, &path, Some(&l.worker), &[("file", "a.jpg", &good), ("file", "b.jpg", b"text")]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No file at all.
    let r = upload(&app, &path, Some(&l.worker), &[]).await;
    assert_eq!(r.code(), "attachment.no_file");

    assert_eq!(app.count("attachments").await, 0, "no row");
    assert!(stored_files(&app).is_empty(), "no file: {:?}", stored_files(&app));
});

/// Small limits, so that the test sends kilobytes, not megabytes.
async fn oversize(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.attachments.image_bytes = 64 << 10;
        c.attachments.document_bytes = 96 << 10;
        c.attachments.request_bytes = 200 << 10;
        c.attachments.per_order = 3;
    })
    .await
    else {
        return;
    };
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0303").await;
    let path = format!("/api/v1/orders/{id}/attachments");
    // A photo over the photo limit (but under the document limit).
    let mut big = photo_with_gps(4);
    big.resize(80 << 10, 0);
    let r = upload(&app, &path, Some(&l.worker), &[("file", "big.jpg", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(r.code(), "attachment.too_large");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("1 MB"), "the limit is named");
    // A file over every limit is cut off while streaming.
    let huge = vec![b'%'; 150 << 10];
    let r = upload(&app, &path, Some(&l.worker), &[("file", "huge.pdf", &huge)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A request declaring more than the request limit is refused unread.
    let r = upload(&app, &path, Some(&l.worker), &[("file", "a.pdf", &huge), ("file", "b.pdf", &huge)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("attachments").await, 0);
    assert!(stored_files(&app).is_empty());

    // At most `per_order` attachments on one order.
    let pdf = |n: u8| format!("%PDF-1.4\n% {n}\n%%EOF\n").into_bytes();
    let (a, b, c, d) = (pdf(1), pdf(2), pdf(3), pdf(4));
    let r = upload(&app, &path, Some(&l.worker), &[("file", "1.pdf", &a), ("file", "2.pdf", &b)]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = upload(&app, &path, Some(&l.worker), &[("file", "3.pdf", &c), ("file", "4.pdf", &d)]).await;
    assert_eq!(r.code(), "attachment.too_many");
    assert_eq!(app.count("attachments").await, 2);
    assert_eq!(stored_files(&app).len(), 2);
}

mod oversize_uploads_are_refused_with_413_and_nothing_stored {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        oversize(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        oversize(Backend::Postgres).await;
    }
}

both_backends!(attachments_out_of_scope_answer_404, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0303").await;
    let r = upload(
        &app,
        &format!("/api/v1/orders/{id}/attachments"),
        Some(&l.worker),
        &[("file", "a.jpg", &photo_with_gps(5))],
    )
    .await;
    let aid = r.body[0]["id"].as_i64().unwrap();
    // A worker of another subdistrict.
    let admin = app.admin().await;
    let sub = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "涧河街道", "code": "140107003"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.add_user("other", sub, &["grid_worker", "acceptor"]).await;
    let other = app.login("other", PASSWORD).await;
    for variant in ["", "?variant=public", "?variant=thumb"] {
        let (status, _, _) = fetch(&app, &format!("/api/v1/attachments/{aid}{variant}"), Some(&other)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let missing = app.get("/api/v1/attachments/999999", &other).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/orders/{id}/attachments"), &other).await.status, StatusCode::NOT_FOUND);
    let r = upload(
        &app,
        &format!("/api/v1/orders/{id}/attachments"),
        Some(&other),
        &[("file", "b.jpg", &photo_with_gps(6))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Nobody without a login.
    let (status, _, _) = fetch(&app, &format!("/api/v1/attachments/{aid}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("attachments").await, 1);
});

both_backends!(the_portal_sees_only_public_stripped_photos, |app| {
    let l = setup(&app).await;
    // 居民提单 with a photo taken on the phone.
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0303"))).await;
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    let resident_photo = photo_with_gps(7);
    let r = upload(
        &app,
        &format!("/api/v1/portal/orders/{code}/attachments"),
        None,
        &[("file", "IMG_0001.jpg", &resident_photo)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body[0].get("name").is_none(), "the portal view carries no file name");
    // Residents may send photos only.
    let r =
        upload(&app, &format!("/api/v1/portal/orders/{code}/attachments"), None, &[("file", "a.pdf", b"%PDF-1.4\n")])
            .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.code(), "attachment.photo_only");
    let t = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await;
    let photo_url = t.body["timeline"][0]["photos"][0]["url"].as_str().unwrap().to_string();
    assert!(photo_url.starts_with(&format!("/api/v1/portal/orders/{code}/attachments/")));

    // Staff see the resident's original.
    let queue = app.get("/api/v1/orders?queue=pending_accept", &l.centre).await;
    let id = queue.body["orders"][0]["id"].as_i64().unwrap();
    let d = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    let resident_aid = d.body["attachments"][0]["id"].as_i64().unwrap();
    assert_eq!(d.body["attachments"][0]["public"], true);
    let (_, _, bytes) = fetch(&app, &format!("/api/v1/attachments/{resident_aid}"), Some(&l.centre)).await;
    assert_eq!(bytes, resident_photo);

    // Once accepted, the report is closed to more photos.
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    let r = upload(
        &app,
        &format!("/api/v1/portal/orders/{code}/attachments"),
        None,
        &[("file", "late.jpg", &photo_with_gps(8))],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "override_reason": "网格员处理"}),
    )
    .await;
    act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;

    // The worker handles with an internal document, then feeds back with a result photo.
    let up = |files: Vec<(&'static str, &'static str, Vec<u8>)>| {
        let app = &app;
        let worker = l.worker.clone();
        async move {
            let refs: Vec<(&str, &str, &[u8])> = files.iter().map(|(f, n, b)| (*f, *n, b.as_slice())).collect();
            let r = upload(app, &format!("/api/v1/orders/{id}/attachments"), Some(&worker), &refs).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body.as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect::<Vec<i64>>()
        }
    };
    let doc = up(vec![("file", "物业维修单.pdf", b"%PDF-1.4\n%%EOF\n".to_vec())]).await[0];
    let result_photo = photo_with_gps(9);
    let photo = up(vec![("file", "修好了.jpg", result_photo.clone())]).await[0];
    let unused = up(vec![("file", "内部照片.jpg", photo_with_gps(10))]).await[0];

    // Ids must be this order's own, and not yet used.
    let r =
        act(&app, &l.worker, id, json!({"action": "handle", "note": "已联系物业电工", "attachments": [resident_aid]}))
            .await;
    assert_eq!(r.code(), "attachment.not_linkable", "{:?}", r.body);
    let r = act(&app, &l.worker, id, json!({"action": "handle", "note": "已联系物业电工", "attachments": [doc, doc]}))
        .await;
    assert_eq!(r.code(), "attachment.not_linkable");
    act_ok(&app, &l.worker, id, json!({"action": "handle", "note": "已联系物业电工", "attachments": [doc]})).await;
    let r =
        act(&app, &l.worker, id, json!({"action": "report_back", "result": "已更换路灯", "attachments": [doc]})).await;
    assert_eq!(r.code(), "attachment.not_linkable", "a file belongs to one step");
    let other_order = staff_order(&app, &l, "0303").await;
    let r = upload(
        &app,
        &format!("/api/v1/orders/{other_order}/attachments"),
        Some(&l.worker),
        &[("file", "x.jpg", &photo_with_gps(11))],
    )
    .await;
    let foreign = r.body[0]["id"].as_i64().unwrap();
    let r =
        act(&app, &l.worker, id, json!({"action": "report_back", "result": "已更换路灯", "attachments": [foreign]}))
            .await;
    assert_eq!(r.code(), "attachment.not_linkable", "another order's file");
    let o = act_ok(
        &app,
        &l.worker,
        id,
        json!({"action": "report_back", "result": "已更换路灯,恢复照明", "attachments": [photo]}),
    )
    .await;
    assert_eq!(o["state"], "pending_verify");

    // Staff see each file on its step of the timeline.
    let d = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    let events = d.body["events"].as_array().unwrap();
    let seq_of = |action: &str| events.iter().find(|e| e["action"] == action).unwrap()["seq"].clone();
    let by_id = |aid: i64| d.body["attachments"].as_array().unwrap().iter().find(|a| a["id"] == aid).unwrap().clone();
    assert_eq!(by_id(doc)["event_seq"], seq_of("handle"));
    assert_eq!(by_id(photo)["event_seq"], seq_of("report_back"));
    assert_eq!(by_id(photo)["public"], true, "a result photo is public");
    assert_eq!(by_id(doc)["public"], false, "documents never are");
    assert_eq!(by_id(unused)["public"], false);

    // The portal: the reporter's photo on the report, the result photo on 反馈,
    // nothing else; copies without GPS; never an original.
    let t = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await;
    let timeline = t.body["timeline"].as_array().unwrap();
    let photos: Vec<i64> = timeline
        .iter()
        .flat_map(|s| s["photos"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(photos, vec![resident_aid, photo]);
    let step = timeline.iter().find(|s| s["note"] == "已更换路灯,恢复照明").unwrap();
    assert_eq!(step["photos"][0]["id"], photo);
    assert!(!t.body.to_string().contains("物业维修单"));
    for aid in [resident_aid, photo] {
        for variant in ["", "?variant=thumb", "?variant=public"] {
            let (status, headers, bytes) =
                fetch(&app, &format!("/api/v1/portal/orders/{code}/attachments/{aid}{variant}"), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["content-type"], "image/jpeg");
            assert!(!contains(&bytes, b"Exif") && !contains(&bytes, &gps_segment()[10..]));
            assert_ne!(bytes, result_photo);
            assert_ne!(bytes, resident_photo);
        }
        let (status, _, _) =
            fetch(&app, &format!("/api/v1/portal/orders/{code}/attachments/{aid}?variant=original"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no original for the public");
    }
    for aid in [doc, unused, foreign] {
        let (status, _, _) = fetch(&app, &format!("/api/v1/portal/orders/{code}/attachments/{aid}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "attachment {aid} is not public here");
    }
    let (status, _, _) = fetch(&app, &format!("/api/v1/portal/orders/WRONGCODE234/attachments/{photo}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every route is in the OpenAPI document.
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None, None).await.body;
    for p in [
        "/api/v1/orders/{id}/attachments",
        "/api/v1/attachments/{id}",
        "/api/v1/portal/orders/{code}/attachments",
        "/api/v1/portal/orders/{code}/attachments/{id}",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} in the OpenAPI document");
    }
});
