//! Demo photos: a few drawn street scenes, stored once by content and
//! attached to recent orders (the reporter's photo on residents' reports,
//! a result photo on 反馈) so the pages look as they do in use. Like a
//! phone's, the originals carry GPS in their EXIF; the public copies don't.

use std::path::Path;

use image::{Rgb, RgbImage};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    attachments::{
        content::{self, FileType},
        exif,
        files::{FileStore, Variant},
    },
    platform::db::{now_ms, Db},
};

/// Photos per kind attached in the demo.
const PER_KIND: i64 = 40;
/// Roughly the demo district (杏花岭区, 太原).
const LAT: f64 = 37.8835;
const LON: f64 = 112.5702;

#[derive(Clone, Copy)]
enum Scene {
    DarkLamp,
    Rubbish,
    Puddle,
    LitLamp,
    CleanStreet,
}

fn fill(img: &mut RgbImage, x0: i32, y0: i32, x1: i32, y1: i32, c: [u8; 3]) {
    for y in y0.max(0)..y1.min(img.height() as i32) {
        for x in x0.max(0)..x1.min(img.width() as i32) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

fn ellipse(img: &mut RgbImage, cx: i32, cy: i32, rx: i32, ry: i32, c: [u8; 3]) {
    for y in (cy - ry)..=(cy + ry) {
        for x in (cx - rx)..=(cx + rx) {
            let (dx, dy) = ((x - cx) as f64 / rx as f64, (y - cy) as f64 / ry as f64);
            if dx * dx + dy * dy <= 1.0 && x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                img.put_pixel(x as u32, y as u32, Rgb(c));
            }
        }
    }
}

/// A 640 × 480 scene: sky, a row of buildings, the street, and the matter.
fn draw(scene: Scene) -> RgbImage {
    let dusk = matches!(scene, Scene::DarkLamp | Scene::LitLamp);
    let mut img = RgbImage::from_fn(640, 480, |_, y| {
        let t = y as f32 / 300.0;
        let (top, bottom) = if dusk { ([26, 35, 126], [92, 107, 192]) } else { ([100, 170, 230], [200, 225, 245]) };
        let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * t.min(1.0)) as u8;
        Rgb([mix(top[0], bottom[0]), mix(top[1], bottom[1]), mix(top[2], bottom[2])])
    });
    for (i, h) in [150, 190, 130, 210, 170].iter().enumerate() {
        let x = 20 + i as i32 * 125;
        fill(&mut img, x, 300 - h, x + 105, 300, if dusk { [121, 85, 72] } else { [188, 170, 164] });
        for wy in (300 - h + 14..290).step_by(28) {
            for wx in [x + 14, x + 44, x + 74] {
                let lit = dusk && (wx + wy) % 3 == 0;
                fill(&mut img, wx, wy, wx + 16, wy + 14, if lit { [255, 224, 130] } else { [96, 125, 139] });
            }
        }
    }
    fill(&mut img, 0, 300, 640, 480, [120, 120, 120]);
    fill(&mut img, 0, 300, 640, 318, [158, 158, 158]);
    match scene {
        Scene::DarkLamp | Scene::LitLamp => {
            fill(&mut img, 470, 110, 480, 318, [55, 71, 79]);
            fill(&mut img, 420, 110, 480, 118, [55, 71, 79]);
            let lit = matches!(scene, Scene::LitLamp);
            if lit {
                for y in 130..318 {
                    let half = (y - 130) / 2;
                    for x in (428 - half)..(428 + half) {
                        if (0..640).contains(&x) {
                            let p = img.get_pixel(x as u32, y as u32).0;
                            img.put_pixel(
                                x as u32,
                                y as u32,
                                Rgb([p[0].saturating_add(70), p[1].saturating_add(60), p[2]]),
                            );
                        }
                    }
                }
            }
            ellipse(&mut img, 428, 124, 14, 9, if lit { [255, 235, 59] } else { [144, 164, 174] });
        }
        Scene::Rubbish => {
            fill(&mut img, 240, 330, 330, 430, [46, 125, 50]);
            fill(&mut img, 340, 330, 430, 430, [21, 101, 192]);
            ellipse(&mut img, 300, 440, 120, 30, [93, 64, 55]);
            ellipse(&mut img, 250, 335, 40, 22, [141, 110, 99]);
            ellipse(&mut img, 390, 338, 35, 18, [161, 136, 127]);
        }
        Scene::Puddle => {
            ellipse(&mut img, 320, 400, 200, 45, [84, 110, 122]);
            ellipse(&mut img, 300, 395, 120, 22, [120, 144, 156]);
        }
        Scene::CleanStreet => {
            fill(&mut img, 240, 330, 330, 430, [46, 125, 50]);
            fill(&mut img, 340, 330, 430, 430, [21, 101, 192]);
        }
    }
    img
}

fn jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![];
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82))?;
    Ok(exif::insert_into_jpeg(&out, LAT, LON, 1))
}

struct Stored {
    sha256: String,
    size: i64,
    width: i64,
    height: i64,
}

/// Draws a scene and stores it with its copies (a no-op when the data
/// directory already has it: the drawing and so the hash never change).
fn store(files: &FileStore, scene: Scene) -> anyhow::Result<Stored> {
    let bytes = jpeg(&draw(scene))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let t = FileType::from_mime("image/jpeg").expect("JPEG is accepted");
    if !files.path(&sha256, Variant::Thumb).exists() {
        let d = content::derive(&bytes, t)?;
        files.write(&sha256, Variant::Original, &bytes)?;
        files.write(&sha256, Variant::Public, &d.public)?;
        files.write(&sha256, Variant::Thumb, &d.thumb)?;
    }
    Ok(Stored { sha256, size: bytes.len() as i64, width: 640, height: 480 })
}

/// Makes sure the demo photos are in the data directory, and attaches them
/// to orders the first time. Returns how many attachments were added.
pub async fn ensure(db: &Db, data_dir: &Path) -> anyhow::Result<usize> {
    let files = FileStore::new(data_dir);
    let stored = {
        let files = files.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Stored>> {
            [Scene::DarkLamp, Scene::Rubbish, Scene::Puddle, Scene::LitLamp, Scene::CleanStreet]
                .into_iter()
                .map(|s| store(&files, s))
                .collect()
        })
        .await??
    };
    let existing: i64 = sqlx::query("select count(*) from attachments").fetch_one(&db.pool).await?.try_get(0)?;
    if existing > 0 {
        return Ok(0);
    }
    // The reporter's photos of the problem, and the unit's of the result.
    let reports = sqlx::query(
        "select e.id, e.order_id, e.actor_name from order_events e join orders o on o.id = e.order_id \
         where e.seq = 1 and o.source = 'resident' order by e.at desc limit $1",
    )
    .bind(PER_KIND)
    .fetch_all(&db.pool)
    .await?;
    let results = sqlx::query(
        "select id, order_id, actor_name from order_events where action = 'report_back' order by at desc limit $1",
    )
    .bind(PER_KIND)
    .fetch_all(&db.pool)
    .await?;
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let mut added = 0;
    for (rows, choices, resident) in [(&reports, &stored[..3], true), (&results, &stored[3..], false)] {
        for (i, r) in rows.iter().enumerate() {
            let s = &choices[i % choices.len()];
            let name =
                if resident { format!("IMG_{:04}.jpg", 2000 + i) } else { format!("处置结果_{}.jpg", i + 1) };
            sqlx::query(
                "insert into attachments (order_id, event_id, kind, mime, size, sha256, name, uploaded_by, uploader_name, \
                 public, has_thumbnail, width, height, created_at) \
                 values ($1, $2, 'image', 'image/jpeg', $3, $4, $5, \
                 case when $10 = 1 then null else (select min(id) from users where display_name = $6) end, \
                 $6, 1, 1, $7, $8, $9)",
            )
            .bind(r.try_get::<i64, _>(1)?)
            .bind(r.try_get::<i64, _>(0)?)
            .bind(s.size)
            .bind(&s.sha256)
            .bind(&name)
            .bind(r.try_get::<String, _>(2)?)
            .bind(s.width)
            .bind(s.height)
            .bind(now)
            .bind(resident as i64)
            .execute(&mut *tx)
            .await?;
            added += 1;
        }
    }
    tx.commit().await?;
    Ok(added)
}
