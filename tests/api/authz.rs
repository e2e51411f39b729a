//! The authorization matrix, generated from the route table: for every API
//! route in the OpenAPI document, every built-in role (and no login), an
//! object inside the caller's scope, one outside it and one that does not
//! exist. Expected:
//! - a role without the route's permission gets 403, wherever the object is;
//! - with the permission, the inside object is reached (no 401/403/404) and
//!   the outside object answers exactly as the missing one does;
//! - lists contain what is inside and nothing from outside; counts agree
//!   with the scoped lists;
//! - without a login, 401 (public routes excepted).
//!
//! A route without an entry here fails the test, so new routes must state
//! who may call them.

use std::collections::BTreeSet;

use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Clone, Copy)]
enum Access {
    /// Anyone, without logging in.
    Public,
    /// Any logged-in caller.
    Authed,
    /// Callers holding any of these permissions.
    Perm(&'static [&'static str]),
}

/// What the request touches.
#[derive(Clone, Copy, PartialEq)]
enum Obj {
    Community,
    Grid,
    Member,
    MemberToEnd,
    Order,
    Overlay,
    User,
    Token,
    Attachment,
    Unit,
}

#[derive(Clone, Copy)]
enum Target {
    /// Nothing scoped (settings, catalogues, one's own account).
    Global,
    /// The `{…}` in the path is the object.
    Path(Obj),
    /// The object's id goes into the body (via `body`).
    Body(Obj),
    /// A list: must show `inside` and never `outside` (catalogue of names in `World`).
    List(&'static str, &'static str),
    /// Queue counts: each equals the total of the same scoped list.
    Counts,
    /// `{id}` is one of the caller's other sessions.
    OwnSession,
    /// Called with a second session of the caller (it ends that session).
    SpareToken,
    /// `{id}` is one of the caller's own notices (someone else's answers 404:
    /// `notify` tests that).
    OwnNotice,
}

struct Rule {
    method: Method,
    path: &'static str,
    access: Access,
    target: Target,
    /// Builds the body from the world and the object id (if any).
    body: fn(&World, i64) -> Option<Value>,
    /// Fills a non-object path parameter.
    fixed: Option<&'static str>,
    /// Actions on orders: which of them a role may take is the state
    /// machine's decision (tested with the orders), so inside may be 403.
    machine: bool,
}

fn none(_: &World, _: i64) -> Option<Value> {
    None
}

/// Objects inside (community 甲) and outside (community 乙) every role
/// user's scope, and a missing id.
struct World {
    community: (i64, i64),
    grid: (i64, i64),
    member: (i64, i64),
    member_to_end: (i64, i64),
    order: (i64, i64),
    overlay: (i64, i64),
    user: (i64, i64),
    token: (i64, i64),
    attachment: (i64, i64),
    unit: i64,
    /// The community centres of 甲 and 乙.
    centre: (i64, i64),
}

const MISSING: i64 = 987_654_321;

impl World {
    fn pair(&self, o: Obj) -> (i64, i64) {
        match o {
            Obj::Community => self.community,
            Obj::Grid => self.grid,
            Obj::Member => self.member,
            Obj::MemberToEnd => self.member_to_end,
            Obj::Order => self.order,
            Obj::Overlay => self.overlay,
            Obj::User => self.user,
            Obj::Token => self.token,
            Obj::Attachment => self.attachment,
            Obj::Unit => self.centre,
        }
    }
}

fn member_body(name: &str) -> Value {
    json!({"role": "grid_worker", "name": name, "gender": "1", "ethnicity": "01", "political_status": "13",
        "birth_date": "19900101", "education": "30", "mobile": "13800138000"})
}

fn rules() -> Vec<Rule> {
    use Access::*;
    use Obj::*;
    use Target::*;
    let r = |method: Method, path: &'static str, access: Access, target: Target| Rule {
        method,
        path,
        access,
        target,
        body: none,
        fixed: None,
        machine: false,
    };
    let with = |mut rule: Rule, body: fn(&World, i64) -> Option<Value>| {
        rule.body = body;
        rule
    };
    let fixed = |mut rule: Rule, value: &'static str| {
        rule.fixed = Some(value);
        rule
    };
    vec![
        r(Method::GET, "/healthz", Public, Global),
        with(r(Method::POST, "/api/v1/session", Public, Global), |_, _| {
            Some(json!({"username": "role_volunteer", "password": PASSWORD}))
        }),
        r(Method::DELETE, "/api/v1/session", Authed, SpareToken),
        r(Method::GET, "/api/v1/me", Authed, Global),
        with(r(Method::PUT, "/api/v1/me/password", Authed, Global), |_, _| {
            Some(json!({"current_password": "not-the-password", "new_password": "Another-2026"}))
        }),
        r(Method::GET, "/api/v1/me/sessions", Authed, Global),
        // The inbox: every caller's own; notice 1 is nobody's here.
        r(Method::GET, "/api/v1/inbox", Authed, Global),
        r(Method::GET, "/api/v1/inbox/unread-count", Authed, Global),
        r(Method::POST, "/api/v1/inbox/read-all", Authed, Global),
        r(Method::POST, "/api/v1/inbox/{id}/read", Authed, OwnNotice),
        r(Method::DELETE, "/api/v1/me/sessions", Authed, SpareToken),
        r(Method::DELETE, "/api/v1/me/sessions/{id}", Authed, OwnSession),
        // Every caller holds roles at community 甲 (their home), none at 乙.
        with(r(Method::PUT, "/api/v1/me/active-node", Authed, Body(Community)), |_, id| Some(json!({"node_id": id}))),
        // The tree.
        r(Method::GET, "/api/v1/code-tables", Authed, Global),
        r(Method::GET, "/api/v1/nodes", Perm(&["tree.read"]), List("甲社区", "乙")),
        with(r(Method::POST, "/api/v1/nodes", Perm(&["tree.write"]), Body(Community)), |_, id| {
            // A grid without a polygon: refused after the scope check.
            Some(json!({"parent_id": id, "kind": "grid", "name": "新网格"}))
        }),
        r(Method::GET, "/api/v1/nodes/{id}", Perm(&["tree.read"]), Path(Community)),
        with(r(Method::PATCH, "/api/v1/nodes/{id}", Perm(&["tree.write"]), Path(Community)), |_, _| {
            Some(json!({"version": 0, "name": "改名"}))
        }),
        r(Method::DELETE, "/api/v1/nodes/{id}", Perm(&["tree.write"]), Path(Community)),
        with(r(Method::POST, "/api/v1/nodes/{id}/move", Perm(&["tree.write"]), Path(Grid)), |w, _| {
            Some(json!({"parent_id": w.community.0, "version": 0}))
        }),
        r(Method::POST, "/api/v1/nodes/{id}/retire", Perm(&["tree.write"]), Path(Community)),
        r(Method::GET, "/api/v1/nodes/{id}/subtree", Perm(&["tree.read"]), Path(Community)),
        r(Method::GET, "/api/v1/nodes/{id}/geojson", Perm(&["tree.read"]), Path(Community)),
        r(Method::GET, "/api/v1/nodes/{id}/members", Perm(&["tree.read"]), Path(Grid)),
        with(r(Method::POST, "/api/v1/nodes/{id}/members", Perm(&["tree.write"]), Path(Grid)), |_, _| {
            Some(member_body("矩阵新增"))
        }),
        r(Method::DELETE, "/api/v1/members/{id}", Perm(&["tree.write"]), Path(MemberToEnd)),
        with(r(Method::POST, "/api/v1/members/{id}/unmask", Perm(&["member.unmask"]), Path(Member)), |_, _| {
            Some(json!({"reason": "权限矩阵测试"}))
        }),
        with(r(Method::PUT, "/api/v1/members/{id}/public-phone", Perm(&["tree.write"]), Path(Member)), |_, _| {
            Some(json!({"phone": "0351-6123456", "published": true}))
        }),
        r(Method::GET, "/api/v1/grids/locate?lon=112.605&lat=37.905", Perm(&["tree.read"]), List("甲网格", "乙网格")),
        r(Method::GET, "/api/v1/overlays", Perm(&["tree.read"]), List("甲单元", "乙单元")),
        with(r(Method::POST, "/api/v1/overlays", Perm(&["tree.write"]), Body(Community)), |_, id| {
            Some(
                json!({"kind": "combat_unit", "subtype": "compound", "name": "", "anchor_node_id": id, "node_ids": [id]}),
            )
        }),
        r(Method::GET, "/api/v1/overlays/{id}", Perm(&["tree.read"]), Path(Overlay)),
        // Work orders.
        r(Method::GET, "/api/v1/orders?queue=all", Perm(&["orders.read"]), List("甲单", "乙单")),
        with(r(Method::POST, "/api/v1/orders", Perm(&["orders.report"]), Body(Community)), |_, id| {
            Some(json!({"source": "patrol", "category_code": "0101", "title": "", "description": "x", "address": "x",
                "node_id": id}))
        }),
        r(Method::GET, "/api/v1/orders/counts", Perm(&["orders.read"]), Counts),
        r(Method::GET, "/api/v1/orders/map", Perm(&["orders.read"]), List("甲单", "乙单")),
        r(Method::GET, "/api/v1/orders/{id}", Perm(&["orders.read"]), Path(Order)),
        with(
            r(
                Method::POST,
                "/api/v1/orders/{id}/reporter-contact",
                Perm(&["member.unmask", "orders.follow_up"]),
                Path(Order),
            ),
            |_, _| Some(json!({"reason": "回访核实"})),
        ),
        Rule {
            machine: true,
            ..with(r(Method::POST, "/api/v1/orders/{id}/actions", Perm(&["orders.read"]), Path(Order)), |_, _| {
                Some(json!({"version": 0, "action": {"action": "accept"}}))
            })
        },
        // Attachments: the body is read only after the caller and the order
        // are checked, so an empty body is refused (422) only inside.
        r(Method::POST, "/api/v1/orders/{id}/attachments", Perm(&["orders.read"]), Path(Order)),
        r(Method::GET, "/api/v1/orders/{id}/attachments", Perm(&["orders.read"]), Path(Order)),
        r(Method::GET, "/api/v1/attachments/{id}", Perm(&["orders.read"]), Path(Attachment)),
        with(r(Method::POST, "/api/v1/orders/bulk-dispatch", Perm(&["orders.dispatch"]), Body(Order)), |w, id| {
            Some(json!({"orders": [{"id": id, "version": 0}], "lead_unit": w.unit}))
        }),
        r(Method::GET, "/api/v1/units", Perm(&["orders.read"]), Global),
        // An empty name: refused (422) once the caller and the unit are let in.
        with(r(Method::POST, "/api/v1/departments", Perm(&["calendar.write"]), Global), |_, _| {
            Some(json!({"key": "matrix", "name": ""}))
        }),
        with(r(Method::PATCH, "/api/v1/units/{id}", Perm(&["calendar.write"]), Path(Unit)), |_, _| {
            Some(json!({"name": ""}))
        }),
        r(Method::GET, "/api/v1/categories", Public, Global),
        fixed(
            with(r(Method::PUT, "/api/v1/categories/{code}", Perm(&["calendar.write"]), Global), |_, _| {
                Some(json!({"name": "矩阵", "owner_unit": null,
                    "sign_limit": {"unit": "working_hours", "amount": 2}, "handle_limit": {"unit": "working_days", "amount": 0},
                    "urgent_handle_limit": {"unit": "working_days", "amount": 1},
                    "evaluate_limit": {"unit": "working_days", "amount": 3}}))
            }),
            // A zero limit: refused by validation (422) once the caller is let in, so nothing changes.
            "0309",
        ),
        r(Method::GET, "/api/v1/dispatch-rules", Perm(&["calendar.write", "orders.dispatch"]), Global),
        fixed(
            with(
                r(Method::PUT, "/api/v1/nodes/{id}/dispatch-rules/{code}", Perm(&["calendar.write"]), Path(Community)),
                |_, _| {
                    // A department's matter led by the community: refused (422) once the region is found.
                    Some(json!({"lead_unit_id": null}))
                },
            ),
            "0301",
        ),
        fixed(
            r(Method::DELETE, "/api/v1/nodes/{id}/dispatch-rules/{code}", Perm(&["calendar.write"]), Path(Community)),
            "0301",
        ),
        r(Method::GET, "/api/v1/calendar", Perm(&["orders.read"]), Global),
        with(r(Method::POST, "/api/v1/calendar", Perm(&["calendar.write"]), Global), |_, _| Some(json!("x"))),
        fixed(
            with(r(Method::PUT, "/api/v1/calendar/{day}", Perm(&["calendar.write"]), Global), |_, _| {
                Some(json!({"kind": "holiday", "name": "矩阵"}))
            }),
            "not-a-day",
        ),
        fixed(r(Method::DELETE, "/api/v1/calendar/{day}", Perm(&["calendar.write"]), Global), "not-a-day"),
        // The resident portal: no login, reached by tracking code only.
        with(r(Method::POST, "/api/v1/portal/orders", Public, Global), |_, _| {
            Some(json!({"category_code": "0101", "title": "", "description": "x", "address": "x"}))
        }),
        fixed(r(Method::GET, "/api/v1/portal/orders/{code}", Public, Global), "AAAABBBBCCCC"),
        r(Method::GET, "/api/v1/portal/locate?lon=112.605&lat=37.905", Public, Global),
        fixed(
            with(r(Method::POST, "/api/v1/portal/orders/{code}/actions", Public, Global), |_, _| {
                Some(json!({"version": 1, "action": {"action": "withdraw", "reason": "x"}}))
            }),
            "AAAABBBBCCCC",
        ),
        fixed(r(Method::POST, "/api/v1/portal/orders/{code}/attachments", Public, Global), "AAAABBBBCCCC"),
        fixed(r(Method::GET, "/api/v1/portal/orders/{code}/attachments/{id}", Public, Global), "AAAABBBBCCCC"),
        // Audit.
        // The entries of the caller's subtree: 甲's creation, never 乙's.
        r(Method::GET, "/api/v1/audit?action=node.create&per_page=200", Perm(&["audit.read"]), List("甲社区", "乙")),
        // Users, roles, tokens, policy.
        r(Method::GET, "/api/v1/users", Perm(&["users.manage"]), List("in_user", "out_user")),
        with(r(Method::POST, "/api/v1/users", Perm(&["users.manage"]), Body(Community)), |_, id| {
            Some(json!({"username": "x", "display_name": "矩阵", "node_id": id, "roles": ["volunteer"]}))
        }),
        r(Method::GET, "/api/v1/users/{id}", Perm(&["users.manage"]), Path(User)),
        with(r(Method::PATCH, "/api/v1/users/{id}", Perm(&["users.manage"]), Path(User)), |_, _| {
            Some(json!({"display_name": "王芳"}))
        }),
        r(Method::POST, "/api/v1/users/{id}/password-reset", Perm(&["users.manage"]), Path(User)),
        r(Method::GET, "/api/v1/permissions", Perm(&["roles.manage"]), Global),
        r(Method::GET, "/api/v1/roles", Perm(&["roles.manage", "users.manage"]), Global),
        with(r(Method::POST, "/api/v1/roles", Perm(&["roles.manage"]), Global), |_, _| {
            Some(json!({"code": "X", "name": "矩阵", "permissions": []}))
        }),
        fixed(
            with(r(Method::PUT, "/api/v1/roles/{code}", Perm(&["roles.manage"]), Global), |_, _| {
                Some(json!({"name": "志愿者", "permissions": ["orders.report"]}))
            }),
            "volunteer",
        ),
        fixed(r(Method::DELETE, "/api/v1/roles/{code}", Perm(&["roles.manage"]), Global), "grid_worker"),
        r(Method::GET, "/api/v1/tokens", Perm(&["tokens.manage"]), List("甲令牌", "乙令牌")),
        with(r(Method::POST, "/api/v1/tokens", Perm(&["tokens.manage"]), Body(Community)), |_, id| {
            Some(json!({"name": "", "permissions": ["tree.read"], "node_id": id, "expires_in_days": 1}))
        }),
        r(Method::DELETE, "/api/v1/tokens/{id}", Perm(&["tokens.manage"]), Path(Token)),
        r(Method::GET, "/api/v1/policy", Perm(&["policy.manage"]), Global),
        // The outbox: event 1 told of the first order's creation and is not
        // dead, so a retry is refused (409) once the caller is let in.
        r(Method::GET, "/api/v1/outbox/dead", Perm(&["outbox.manage"]), Global),
        fixed(r(Method::POST, "/api/v1/outbox/{id}/retry", Perm(&["outbox.manage"]), Global), "1"),
        with(r(Method::PUT, "/api/v1/policy", Perm(&["policy.manage"]), Global), |_, _| {
            Some(json!({"password_min_length": 8}))
        }),
    ]
}

/// The route table: `METHOD /path` for every operation in the OpenAPI document.
async fn route_table(app: &TestApp) -> BTreeSet<String> {
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None, None).await.body;
    let mut routes = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

fn rule_key(r: &Rule) -> String {
    format!("{} {}", r.method, r.path.split('?').next().unwrap())
}

/// A session for a user, written straight to the database (no password
/// hashing, so the matrix stays fast).
async fn mint_session(app: &TestApp, user_id: i64) -> String {
    let token = fengqiao::platform::crypto::random_token();
    let now = fengqiao::platform::db::now_ms();
    sqlx::query(
        "insert into sessions (token_hash, user_id, kind, csrf_token, created_at, last_seen_at, expires_at) \
         values ($1,$2,'api','x',$3,$3,$4)",
    )
    .bind(fengqiao::auth::hash_token(&token))
    .bind(user_id)
    .bind(now)
    .bind(now + 3_600_000)
    .execute(&app.db.pool)
    .await
    .unwrap();
    token
}

async fn build_world(app: &TestApp) -> World {
    let admin = app.admin().await;
    let mut ids = vec![];
    for (sub, code, comm, grid, x) in
        [("巨轮街道", "140107001", "甲社区", "甲网格", 112.60), ("三桥街道", "140107002", "乙社区", "乙网格", 112.70)]
    {
        let s = app
            .create(&admin, json!({"parent_id": app.root_id, "kind": "subdistrict", "name": sub, "code": code}))
            .await;
        let c = app
            .create(
                &admin,
                json!({"parent_id": s["id"], "kind": "community", "name": comm, "code": format!("{code}001")}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let g = app
            .create(
                &admin,
                json!({"parent_id": c, "kind": "grid", "name": grid, "polygon": rect(x, 37.90, x + 0.01, 37.91)}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let tag = &comm[..3];
        let m = app.post(&format!("/api/v1/nodes/{g}/members"), &admin, member_body(&format!("{tag}员"))).await;
        assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.body);
        let m2 = app.post(&format!("/api/v1/nodes/{g}/members"), &admin, member_body(&format!("{tag}离任"))).await;
        let ov = app
            .post(
                "/api/v1/overlays",
                &admin,
                json!({"kind": "combat_unit", "subtype": "compound", "name": format!("{tag}单元"), "anchor_node_id": c,
                    "node_ids": [c]}),
            )
            .await;
        assert_eq!(ov.status, StatusCode::CREATED, "{:?}", ov.body);
        let o = app
            .post(
                "/api/v1/orders",
                &admin,
                json!({"source": "patrol", "category_code": "0101", "title": format!("{tag}单"), "description": "楼道堆物",
                    "address": "某楼", "lon": x + 0.005, "lat": 37.905}),
            )
            .await;
        assert_eq!(o.status, StatusCode::CREATED, "{:?}", o.body);
        let username = if tag == "甲" { "in_user" } else { "out_user" };
        let u = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": username, "display_name": "某人", "node_id": c, "roles": ["volunteer"]}),
            )
            .await;
        assert_eq!(u.status, StatusCode::CREATED, "{:?}", u.body);
        let t = app
            .post(
                "/api/v1/tokens",
                &admin,
                json!({"name": format!("{tag}令牌"), "permissions": ["tree.read"], "node_id": c, "expires_in_days": 30}),
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        let order_id = o.body["order"]["id"].as_i64().or(o.body["id"].as_i64()).unwrap();
        let a = crate::attachments::upload(
            app,
            &format!("/api/v1/orders/{order_id}/attachments"),
            Some(&admin),
            &[("file", "a.pdf", b"%PDF-1.4\n%%EOF\n")],
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        ids.push([
            c,
            g,
            m.body["id"].as_i64().unwrap(),
            m2.body["id"].as_i64().unwrap(),
            order_id,
            ov.body["id"].as_i64().unwrap(),
            u.body["id"].as_i64().unwrap(),
            t.body["id"].as_i64().unwrap(),
            a.body[0]["id"].as_i64().unwrap(),
        ]);
    }
    // Made with the community.
    let unit: i64 = sqlx::query_scalar("select id from units where node_id = $1 and kind = 'centre'")
        .bind(ids[0][0])
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let other_centre: i64 = sqlx::query_scalar("select id from units where node_id = $1 and kind = 'centre'")
        .bind(ids[1][0])
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let p = |i: usize| (ids[0][i], ids[1][i]);
    World {
        community: p(0),
        grid: p(1),
        member: p(2),
        member_to_end: p(3),
        order: p(4),
        overlay: p(5),
        user: p(6),
        token: p(7),
        attachment: p(8),
        unit,
        centre: (unit, other_centre),
    }
}

/// The built-in roles and their permissions, as the database says.
async fn role_permissions(app: &TestApp) -> Vec<(String, BTreeSet<String>)> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select r.code, rp.permission from roles r left join role_permissions rp on rp.role_code = r.code order by r.code",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut by_role: Vec<(String, BTreeSet<String>)> = vec![];
    for (role, perm) in rows {
        if by_role.last().map(|(r, _)| r != &role).unwrap_or(true) {
            by_role.push((role.clone(), BTreeSet::new()));
        }
        if let Some(p) = perm {
            by_role.last_mut().unwrap().1.insert(p);
        }
    }
    by_role
}

struct Caller {
    role: String,
    perms: BTreeSet<String>,
    user_id: i64,
    token: Option<String>,
}

async fn call(app: &TestApp, rule: &Rule, w: &World, caller: &Caller, obj: i64) -> Resp {
    let mut path = rule.path.to_string();
    if let Some(f) = rule.fixed {
        path = path.replace("{day}", f).replace("{code}", f);
        if matches!(rule.target, Target::Global) {
            path = path.replace("{id}", f);
        }
    }
    let mut token = caller.token.clone();
    match rule.target {
        Target::Path(_) => path = path.replace("{id}", &obj.to_string()),
        Target::OwnSession if token.is_some() => {
            let spare = mint_session(app, caller.user_id).await;
            path = path.replace("{id}", &fengqiao::auth::hash_token(&spare)[..16]);
        }
        Target::OwnSession => path = path.replace("{id}", "0000000000000000"),
        Target::OwnNotice if token.is_none() => path = path.replace("{id}", "1"),
        Target::OwnNotice => {
            let id: i64 = sqlx::query_scalar(
                "insert into notifications (user_id, event_id, topic, object_type, object_id, body, created_at) \
                 values ($1, $2, 'orders.dispatch', 'order', 1, '新派工单', 0) returning id",
            )
            .bind(caller.user_id)
            .bind(rand::random::<u32>() as i64)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
            path = path.replace("{id}", &id.to_string());
        }
        Target::SpareToken if token.is_some() => token = Some(mint_session(app, caller.user_id).await),
        _ => {}
    }
    app.call(rule.method.clone(), &path, token.as_deref(), (rule.body)(w, obj)).await
}

fn refused(s: StatusCode) -> bool {
    matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
}

/// The body with the object's id blanked, to compare answers about two ids.
fn normalised(body: &Value, id: i64) -> String {
    body.to_string().replace(&id.to_string(), "#")
}

/// No login, and one user for every built-in role at community 甲 (their
/// unit its centre).
async fn role_callers(app: &TestApp, w: &World) -> Vec<Caller> {
    let mut callers = vec![Caller { role: "(anonymous)".into(), perms: BTreeSet::new(), user_id: 0, token: None }];
    for (role, perms) in role_permissions(app).await {
        let hash = fengqiao::auth::password::hash(PASSWORD.into()).await;
        let mut conn = app.db.pool.acquire().await.unwrap();
        let username = format!("role_{role}");
        let id = fengqiao::auth::create_user(
            &mut conn,
            fengqiao::auth::NewUser {
                username: &username,
                display_name: &username,
                password_hash: &hash,
                node_id: w.community.0,
                roles: &[role.as_str()],
                must_change_password: false,
            },
        )
        .await
        .unwrap();
        sqlx::query("update users set unit_id = $1 where id = $2")
            .bind(w.unit)
            .bind(id)
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let token = mint_session(app, id).await;
        callers.push(Caller { role, perms, user_id: id, token: Some(token) });
    }
    callers
}

both_backends!(every_route_every_role_inside_and_outside_scope, |app| {
    let rules = rules();
    // Every route has exactly one entry, and every entry is a route.
    let table = route_table(&app).await;
    let covered: BTreeSet<String> = rules.iter().map(rule_key).collect();
    let missing: Vec<&String> = table.difference(&covered).collect();
    assert!(missing.is_empty(), "routes without an authorization-matrix entry: {missing:?}");
    let stale: Vec<&String> = covered.difference(&table).collect();
    assert!(stale.is_empty(), "matrix entries for routes that do not exist: {stale:?}");
    assert_eq!(covered.len(), rules.len(), "a route is listed twice");

    let w = build_world(&app).await;
    let mut callers = role_callers(&app, &w).await;
    assert_eq!(callers.len(), 13, "12 built-in roles and no login");

    let mut failures = vec![];
    let mut checked = 0;
    let mut previous_spare = false;
    for rule in &rules {
        let key = rule_key(rule);
        if previous_spare {
            for c in callers.iter_mut().skip(1) {
                c.token = Some(mint_session(&app, c.user_id).await);
            }
        }
        // Logging out everywhere ended the callers' main sessions too.
        previous_spare = matches!(rule.target, Target::SpareToken);
        for c in &callers {
            let allowed = match rule.access {
                Access::Public => true,
                Access::Authed => c.token.is_some(),
                Access::Perm(any) => any.iter().any(|p| c.perms.contains(*p)),
            };
            let who = &c.role;
            let objs: Vec<i64> = match rule.target {
                Target::Path(o) | Target::Body(o) => {
                    let (i, x) = w.pair(o);
                    vec![i, x, MISSING]
                }
                _ => vec![0],
            };
            let mut answers = vec![];
            for &obj in &objs {
                answers.push(call(&app, rule, &w, c, obj).await);
                checked += 1;
            }
            let first = &answers[0];
            if c.token.is_none() && !matches!(rule.access, Access::Public) {
                for a in &answers {
                    if a.status != StatusCode::UNAUTHORIZED {
                        failures.push(format!("{key} without login: {} {}", a.status, a.body));
                    }
                }
                continue;
            }
            if !allowed {
                for a in &answers {
                    if a.status != StatusCode::FORBIDDEN {
                        failures.push(format!("{key} as {who} (no permission): {} {}", a.status, a.body));
                    }
                }
                continue;
            }
            if matches!(rule.access, Access::Public) {
                if matches!(first.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    failures.push(format!("{key} is public but {who} got {}", first.status));
                }
                continue;
            }
            match rule.target {
                Target::Path(_) | Target::Body(_) => {
                    let inside_ok = if rule.machine {
                        !matches!(first.status, StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND)
                    } else {
                        !refused(first.status)
                    };
                    if !inside_ok {
                        failures.push(format!("{key} as {who} inside: {} {}", first.status, first.body));
                    }
                    let (outside, missing) = (&answers[1], &answers[2]);
                    if outside.status != missing.status
                        || normalised(&outside.body, objs[1]) != normalised(&missing.body, MISSING)
                    {
                        failures.push(format!(
                            "{key} as {who}: outside answers {} {} but missing answers {} {}",
                            outside.status, outside.body, missing.status, missing.body
                        ));
                    }
                    if outside.status.is_success() && matches!(rule.target, Target::Path(_)) {
                        failures.push(format!("{key} as {who}: outside object reached ({})", outside.status));
                    }
                }
                Target::List(inside, outside) => {
                    let text = first.body.to_string();
                    if first.status != StatusCode::OK || !text.contains(inside) || text.contains(outside) {
                        failures.push(format!(
                            "{key} as {who}: expected {inside} and not {outside}: {} {}",
                            first.status,
                            &text[..text.len().min(300)]
                        ));
                    }
                }
                Target::Counts => {
                    if first.status != StatusCode::OK {
                        failures.push(format!("{key} as {who}: {}", first.status));
                        continue;
                    }
                    for q in first.body.as_array().unwrap() {
                        let queue = q["queue"].as_str().unwrap();
                        let list = app.get(&format!("/api/v1/orders?queue={queue}"), c.token.as_deref().unwrap()).await;
                        if list.body["total"] != q["count"] {
                            failures
                                .push(format!("{key} as {who}: {queue} counts {q} but lists {}", list.body["total"]));
                        }
                    }
                }
                Target::Global | Target::OwnSession | Target::SpareToken | Target::OwnNotice => {
                    if refused(first.status) {
                        failures.push(format!("{key} as {who}: {} {}", first.status, first.body));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
});

/// One id carried in a request body or a list filter rather than the path.
struct Probe {
    what: &'static str,
    method: Method,
    /// `{order}`: the order of 甲 waiting for dispatch; `{id}`: the probed id.
    path: &'static str,
    /// The body for the probed id and the order's version.
    body: fn(&str, i64) -> Option<Value>,
    /// The probed id: inside (甲), outside (乙), missing.
    ids: [String; 3],
}

fn act_body(action: Value, version: i64) -> Option<Value> {
    Some(json!({"version": version, "action": action}))
}

async fn order_version(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar("select version from orders where id = $1").bind(id).fetch_one(&app.db.pool).await.unwrap()
}

// Ids inside request bodies and list filters, for every role: units named
// in a dispatch (lead and assisting, one by one or in bulk), the order a
// duplicate is merged into, the community whose units are listed, the
// tracking code searched for. An id of community 乙 answers exactly as one
// that does not exist (so it neither reaches 乙 nor tells that it is
// there); an id of 甲 is let through.
both_backends!(ids_in_bodies_and_filters_answer_like_missing_ones, |app| {
    let w = build_world(&app).await;
    let callers = role_callers(&app, &w).await;
    // 甲's order, accepted: waiting for dispatch (or a merge).
    let acceptor = callers.iter().find(|c| c.role == "acceptor").unwrap().token.clone().unwrap();
    let v = order_version(&app, w.order.0).await;
    let r = app
        .post(
            &format!("/api/v1/orders/{}/actions", w.order.0),
            &acceptor,
            json!({"version": v, "action": {"action": "accept"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut codes = [String::new(), String::new(), "NOSUCHCODE12".to_string()];
    for (i, id) in [w.order.0, w.order.1].into_iter().enumerate() {
        codes[i] = sqlx::query_scalar("select tracking_code from orders where id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    }
    let ids = |(inside, outside): (i64, i64)| [inside.to_string(), outside.to_string(), MISSING.to_string()];
    let probes = [
        Probe {
            what: "the lead unit of a dispatch",
            method: Method::POST,
            path: "/api/v1/orders/{order}/actions",
            body: |id, v| act_body(json!({"action": "dispatch", "lead_unit": id.parse::<i64>().unwrap()}), v),
            ids: ids(w.centre),
        },
        Probe {
            what: "an assisting unit of a dispatch",
            method: Method::POST,
            path: "/api/v1/orders/{order}/actions",
            body: |id, v| {
                // 甲's grid unit leads (its id is not the probed one).
                act_body(json!({"action": "dispatch", "lead_unit": -1, "assisting": [id.parse::<i64>().unwrap()]}), v)
            },
            ids: ids(w.centre),
        },
        Probe {
            what: "the unit of a bulk dispatch",
            method: Method::POST,
            path: "/api/v1/orders/bulk-dispatch",
            body: |id, v| {
                Some(json!({"orders": [{"id": "{order}", "version": v}], "lead_unit": id.parse::<i64>().unwrap()}))
            },
            ids: ids(w.centre),
        },
        Probe {
            what: "the order merged into",
            method: Method::POST,
            path: "/api/v1/orders/{order}/actions",
            body: |id, v| act_body(json!({"action": "merge", "into": id.parse::<i64>().unwrap()}), v),
            ids: ids(w.order),
        },
        Probe {
            what: "the community of the unit list",
            method: Method::GET,
            path: "/api/v1/units?community={id}",
            body: |_, _| None,
            ids: ids(w.community),
        },
        Probe {
            what: "the tracking code searched for",
            method: Method::GET,
            path: "/api/v1/orders?queue=all&q={id}",
            body: |_, _| None,
            ids: codes.clone(),
        },
    ];
    let grid_unit: i64 = sqlx::query_scalar("select id from units where node_id = $1")
        .bind(w.grid.0)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let mut failures = vec![];
    for p in &probes {
        for c in callers.iter().filter(|c| c.token.is_some()) {
            let mut answers = vec![];
            for (i, id) in p.ids.iter().enumerate() {
                // An action let through would change the order the next probes use.
                if i == 0 && p.method == Method::POST {
                    answers.push(None);
                    continue;
                }
                let v = order_version(&app, w.order.0).await;
                let fill = |s: String| {
                    s.replace("\"{order}\"", &w.order.0.to_string())
                        .replace("{order}", &w.order.0.to_string())
                        .replace("{id}", id)
                        .replace("\"lead_unit\":-1", &format!("\"lead_unit\":{grid_unit}"))
                };
                let body = (p.body)(id, v).map(|b| serde_json::from_str::<Value>(&fill(b.to_string())).unwrap());
                answers
                    .push(Some(app.call(p.method.clone(), &fill(p.path.to_string()), c.token.as_deref(), body).await));
            }
            let (outside, missing) = (answers[1].as_ref().unwrap(), answers[2].as_ref().unwrap());
            let who = &c.role;
            if outside.status != missing.status
                || outside.body.to_string().replace(&p.ids[1], "#") != missing.body.to_string().replace(&p.ids[2], "#")
            {
                failures.push(format!(
                    "{} as {who}: outside answers {} {} but missing answers {} {}",
                    p.what, outside.status, outside.body, missing.status, missing.body
                ));
            }
            if let Some(inside) = &answers[0] {
                if c.perms.contains("orders.read") && (inside.status != StatusCode::OK || inside.body == missing.body) {
                    failures.push(format!("{} as {who}: the inside id finds nothing: {}", p.what, inside.body));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
});
