//! The demo district: 杏花岭区, 太原 (140107) with its real 11 街道, 1 镇 and
//! 146 社区/村 (统计用区划代码 2023), and synthetic grids, buildings and people
//! below them, sized after seed 002: about 897 grids, 886 grid workers and
//! one 总网格长 per community. Grid polygons tile the district's area with
//! no gaps or overlaps (a proportional subdivision of one rectangle), and
//! are numbered west to east, north to south as local rules ask.

mod history;
mod names;
pub mod orders;
pub mod photos;

use std::fmt;

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use sqlx::Row;

use crate::{
    auth::{self, password},
    kernel::{
        codes::{BuildingCode, GridCode, IdNumber, MobilePhone, RegionCode},
        geo::polygon::GridPolygon,
    },
    platform::{
        crypto::Crypto,
        db::{now_ms, Backend, Db, DbUrl},
    },
};
pub use names::NameGen;

const REGION_CSV: &str = include_str!("../../data/region-140107.csv");
pub const DEMO_PASSWORD: &str = "Fengqiao@2026";
/// The district's extent for the synthetic map (about 14 km × 12 km, 170 km²).
const DISTRICT_RECT: Rect = Rect { x0: 112.555, y0: 37.855, x1: 112.715, y1: 37.965 };
const TARGET_GRIDS: usize = 897;
const TARGET_WORKERS: usize = 886;
/// Work orders over the last year in the demo.
const DEMO_ORDERS: usize = 4000;

pub const LOGINS: &str = "演示账号（密码均为 Fengqiao@2026）：
  admin              系统管理员（杏花岭区）
  zhongxin           区综治中心 值班长/派遣员
  jd140107002        三桥街道综治中心 受理员/派遣员
  sq140107002001     三桥街道黑龙潭社区 总网格长
  sq140107001001     巨轮街道胜利西街社区 总网格长，兼第二至五网格网格员（页面顶部切换岗位）
  wg140107002001001  黑龙潭社区第一网格 网格员";

#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    /// Width and height in metres, to split along the longer side.
    fn size_m(&self) -> (f64, f64) {
        let k = ((self.y0 + self.y1) / 2.0).to_radians().cos();
        ((self.x1 - self.x0) * 111_320.0 * k, (self.y1 - self.y0) * 110_540.0)
    }
}

/// Splits `rect` into one tile per weight, each tile's area proportional
/// to its weight. Neighbouring tiles share the exact split coordinate, so
/// the tiles cover the rectangle with no gap and no overlap.
fn subdivide(rect: Rect, weights: &[f64]) -> Vec<Rect> {
    if weights.len() == 1 {
        return vec![rect];
    }
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut k = 1;
    let mut best = f64::MAX;
    for (i, w) in weights.iter().enumerate().take(weights.len() - 1) {
        acc += w;
        let d = (acc - total / 2.0).abs();
        if d < best {
            best = d;
            k = i + 1;
        }
    }
    let left: f64 = weights[..k].iter().sum();
    let f = left / total;
    let (w, h) = rect.size_m();
    let (a, b) = if w >= h {
        let x = rect.x0 + (rect.x1 - rect.x0) * f;
        (Rect { x1: x, ..rect }, Rect { x0: x, ..rect })
    } else {
        // North part first, so tiles come out north to south.
        let y = rect.y1 - (rect.y1 - rect.y0) * f;
        (Rect { y0: y, ..rect }, Rect { y1: y, ..rect })
    };
    let mut out = subdivide(a, &weights[..k]);
    out.extend(subdivide(b, &weights[k..]));
    out
}

struct Region {
    code: String,
    name: String,
    level: String,
    parent: String,
}

fn regions() -> Vec<Region> {
    REGION_CSV
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|s| s.trim_matches('"')).collect();
            Region { code: f[0].into(), name: f[1].into(), level: f[2].into(), parent: f[3].into() }
        })
        .collect()
}

/// A value bound into a batched insert.
use crate::platform::db::V;

/// Collects rows and writes them as multi-row inserts (few round trips
/// matter on PostgreSQL).
struct Batch {
    table: &'static str,
    cols: &'static [&'static str],
    rows: Vec<Vec<V>>,
}

impl Batch {
    fn new(table: &'static str, cols: &'static [&'static str]) -> Self {
        Batch { table, cols, rows: vec![] }
    }

    fn push(&mut self, row: Vec<V>) {
        debug_assert_eq!(row.len(), self.cols.len());
        self.rows.push(row);
    }

    async fn flush(&mut self, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
        // Large statements cost SQLite (through sqlx) more per parameter
        // than they save; PostgreSQL gains from fewer round trips.
        let per = (if conn.backend_name() == "SQLite" { 600 } else { 30_000 } / self.cols.len()).clamp(1, 500);
        for chunk in self.rows.chunks(per) {
            let mut sql = format!("insert into {} ({}) values ", self.table, self.cols.join(","));
            let mut n = 0;
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for j in 0..self.cols.len() {
                    n += 1;
                    if j > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row {
                    q = match v {
                        V::I(x) => q.bind(*x),
                        V::F(x) => q.bind(*x),
                        V::S(x) => q.bind(x.clone()),
                    };
                }
            }
            q.execute(&mut *conn).await?;
        }
        self.rows.clear();
        Ok(())
    }
}

const NODE_COLS: &[&str] = &[
    "id",
    "parent_id",
    "path",
    "depth",
    "kind",
    "code",
    "name",
    "grid_type",
    "households",
    "population",
    "area_m2",
    "polygon",
    "min_lon",
    "min_lat",
    "max_lon",
    "max_lat",
    "lon",
    "lat",
    "attrs",
    "created_at",
    "updated_at",
];
const MEMBER_COLS: &[&str] = &[
    "node_id",
    "role",
    "name",
    "gender",
    "ethnicity",
    "political_status",
    "birth_date",
    "education",
    "mobile_enc",
    "mobile_idx",
    "id_number_enc",
    "id_number_idx",
    "phone",
    "user_id",
    "started_at",
    "created_at",
    "public_phone",
    "public_phone_published",
];

struct NodeRow {
    id: i64,
    path: String,
    code: String,
}

struct Gen {
    rng: StdRng,
    crypto: Crypto,
    names: NameGen,
    next_id: i64,
    now: i64,
    nodes: Batch,
    members: Batch,
    users: Batch,
    units: Batch,
    next_unit: i64,
    /// Members generated so far; numbers their ID numbers.
    next_person: u32,
    roles: Batch,
    summary: DemoSummary,
}

#[derive(Default, Debug)]
pub struct DemoSummary {
    pub subdistricts: usize,
    pub communities: usize,
    pub villages: usize,
    pub grids: usize,
    pub buildings: usize,
    pub grid_leaders: usize,
    pub grid_workers: usize,
    pub building_stewards: usize,
    pub users: usize,
    pub overlays: usize,
    pub households: i64,
    pub orders: usize,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "杏花岭区：{} 个街道/乡镇，{} 个社区、{} 个村，{} 个网格，{} 栋楼，{} 户；\
             总网格长 {} 名，网格员 {} 名，楼栋长 {} 名；账号 {} 个；作战单元与防区 {} 个；近一年工单 {} 件",
            self.subdistricts,
            self.communities - self.villages,
            self.villages,
            self.grids,
            self.buildings,
            self.households,
            self.grid_leaders,
            self.grid_workers,
            self.building_stewards,
            self.users,
            self.overlays,
            self.orders
        )
    }
}

fn polygon_values(r: &Rect) -> anyhow::Result<(Vec<V>, (f64, f64))> {
    let p = GridPolygon::from_rect(r.x0, r.y0, r.x1, r.y1);
    let c = p.centroid();
    Ok((
        vec![
            V::F(Some(p.area_m2())),
            V::S(Some(p.to_geojson().to_string())),
            V::F(Some(r.x0)),
            V::F(Some(r.y0)),
            V::F(Some(r.x1)),
            V::F(Some(r.y1)),
        ],
        c,
    ))
}

/// Where Taiyuan residents were first registered (GB/T 2260 codes of 太原市,
/// first digits of their ID numbers): mostly the demo's own 杏花岭区, the
/// rest from the other districts and counties of the city.
const TAIYUAN_ADDRESS_CODES: &[&str] = &[
    "140107", "140107", "140107", "140107", "140105", "140106", "140107", "140108", "140109", "140110", "140107",
    "140121", "140122", "140123", "140181",
];

/// A checksum-valid 公民身份号码 for the `n`th generated member, agreeing
/// with the member's birth date and gender (odd sequence for men).
/// Derived from `n`, not from the random generator, so adding it left the
/// rest of the demo unchanged.
fn resident_id_number(n: u32, birth: chrono::NaiveDate, male: bool) -> IdNumber {
    let address = TAIYUAN_ADDRESS_CODES[(n as usize * 7 + n as usize / 3) % TAIYUAN_ADDRESS_CODES.len()];
    let seq = ((n * 389 + 17) % 500) as u16 * 2 + u16::from(male);
    IdNumber::from_parts(address, birth, seq).expect("a Taiyuan code and a past birth date make a valid number")
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        parent: Option<&NodeRow>,
        kind: &str,
        code: String,
        name: &str,
        grid_type: Option<&str>,
        households: Option<i64>,
        population: Option<i64>,
        rect: Option<&Rect>,
        point: Option<(f64, f64)>,
        attrs: serde_json::Value,
    ) -> anyhow::Result<NodeRow> {
        let id = self.next_id;
        self.next_id += 1;
        let path = format!("{}{id}/", parent.map(|p| p.path.as_str()).unwrap_or("/"));
        let depth = path.matches('/').count() as i64 - 2;
        let (geo, centroid) = match rect {
            Some(r) => {
                let (v, c) = polygon_values(r)?;
                (v, Some(c))
            }
            None => ((0..6).map(|i| if i == 1 { V::S(None) } else { V::F(None) }).collect(), None),
        };
        let (lon, lat) = point.or(centroid).map(|(a, b)| (Some(a), Some(b))).unwrap_or((None, None));
        let mut row = vec![
            V::I(Some(id)),
            V::I(parent.map(|p| p.id)),
            V::S(Some(path.clone())),
            V::I(Some(depth)),
            V::S(Some(kind.into())),
            V::S(Some(code.clone())),
            V::S(Some(name.into())),
            V::S(grid_type.map(Into::into)),
            V::I(households),
            V::I(population),
        ];
        row.extend(geo);
        row.extend([V::F(lon), V::F(lat), V::S(Some(attrs.to_string())), V::I(Some(self.now)), V::I(Some(self.now))]);
        self.nodes.push(row);
        Ok(NodeRow { id, path, code })
    }

    fn person(&mut self, node_id: i64, role: &str, user_id: Option<i64>) -> String {
        let rng = &mut self.rng;
        let male = rng.gen_bool(if role == "grid_worker" { 0.42 } else { 0.5 });
        let name = self.names.name(rng, male);
        let year = rng.gen_range(1966..=2001);
        let (month, day) = (rng.gen_range(1..=12), rng.gen_range(1..=28));
        let birth = format!("{year}{month:02}{day:02}");
        let ethnicity = *[("01", 960), ("03", 15), ("11", 12), ("02", 8), ("08", 5)]
            .choose_weighted(rng, |e| e.1)
            .map(|e| &e.0)
            .unwrap_or(&"01");
        let political = if year >= 1995 && rng.gen_bool(0.4) {
            "03"
        } else if rng.gen_bool(if role == "grid_leader" { 0.85 } else { 0.45 }) {
            "01"
        } else {
            "13"
        };
        let education = *[("20", 35), ("30", 40), ("60", 18), ("40", 5), ("14", 2)]
            .choose_weighted(rng, |e| e.1)
            .map(|e| &e.0)
            .unwrap_or(&"30");
        let prefix = [
            "139", "138", "135", "137", "150", "152", "158", "186", "187", "188", "131", "132", "155", "156", "176",
            "177", "180", "181", "189", "199", "134", "159", "183", "185",
        ]
        .choose(rng)
        .copied()
        .unwrap_or("139");
        let mobile = format!("{prefix}{:08}", rng.gen_range(0..100_000_000u32));
        let mobile = MobilePhone::parse(&mobile).expect("generated numbers are valid");
        let sealed = self.crypto.seal_mobile(&mobile).expect("the key ring was checked when loaded");
        let phone = rng.gen_bool(0.3).then(|| format!("0351-{}", rng.gen_range(2_000_000..8_000_000)));
        let born = chrono::NaiveDate::from_ymd_opt(year, month, day).expect("days 1-28 exist in every month");
        let id_number = resident_id_number(self.next_person, born, male);
        self.next_person += 1;
        let sealed_id = self.crypto.seal_id_number(&id_number).expect("the key ring was checked when loaded");
        // 网格员公示: grid leaders and workers publish a work phone (derived
        // from the person's number, so the random stream stays as it was).
        let public_phone =
            matches!(role, "grid_leader" | "grid_worker").then(|| format!("0351-{}", 6_100_000 + self.next_person));
        self.members.push(vec![
            V::I(Some(node_id)),
            V::S(Some(role.into())),
            V::S(Some(name.clone())),
            V::S(Some(if male { "1" } else { "2" }.into())),
            V::S(Some(ethnicity.into())),
            V::S(Some(political.into())),
            V::S(Some(birth)),
            V::S(Some(education.into())),
            V::S(Some(sealed.enc)),
            V::S(Some(sealed.idx)),
            V::S(Some(sealed_id.enc)),
            V::S(Some(sealed_id.idx)),
            V::S(phone),
            V::I(user_id),
            V::I(Some(self.now - rng.gen_range(30..2000) * 86_400_000)),
            V::I(Some(self.now)),
            V::S(public_phone.clone()),
            V::I(Some(i64::from(public_phone.is_some()))),
        ]);
        match role {
            "grid_leader" => self.summary.grid_leaders += 1,
            "grid_worker" => self.summary.grid_workers += 1,
            "building_steward" => self.summary.building_stewards += 1,
            _ => {}
        }
        name
    }

    /// A unit that receives work orders; returns its id.
    fn unit(&mut self, kind: &str, code: String, name: &str, node_id: i64) -> i64 {
        self.next_unit += 1;
        self.units.push(vec![
            V::I(Some(self.next_unit)),
            V::S(Some(kind.into())),
            V::S(Some(code)),
            V::S(Some(name.into())),
            V::I(Some(node_id)),
            V::I(Some(self.now)),
        ]);
        self.next_unit
    }

    #[allow(clippy::too_many_arguments)]
    fn user(
        &mut self,
        id: i64,
        username: &str,
        display: &str,
        node_id: i64,
        unit: Option<i64>,
        hash: &str,
        roles: &[&str],
    ) {
        self.users.push(vec![
            V::I(Some(id)),
            V::S(Some(username.into())),
            V::S(Some(display.into())),
            V::S(Some(hash.into())),
            V::I(Some(node_id)),
            V::I(unit),
            V::I(Some(0)),
            V::I(Some(self.now)),
            V::I(Some(self.now)),
        ]);
        for r in roles {
            self.grant(id, r, node_id);
        }
        self.summary.users += 1;
    }

    /// A role for a user at a node (their home node, or another post).
    fn grant(&mut self, user_id: i64, role: &str, node_id: i64) {
        self.roles.push(vec![V::I(Some(user_id)), V::S(Some(role.into())), V::I(Some(node_id))]);
    }
}

/// Short name of a community for grid names: 胜利西街社区居委会 → 胜利西街社区.
fn community_short(name: &str) -> String {
    crate::tree::model::short_name(name)
}

const CN_NUM: [&str; 20] = [
    "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四", "十五", "十六", "十七",
    "十八", "十九", "二十",
];
const DEPARTMENTS: [(&str, &str); 8] = [
    ("police", "杏花岭公安分局"),
    ("urban_mgmt", "区城市管理局"),
    ("housing", "区住房和城乡建设局"),
    ("market", "区市场监督管理局"),
    ("civil_affairs", "区民政局"),
    ("health", "区卫生健康局"),
    ("emergency", "区应急管理局"),
    ("fire", "区消防救援大队"),
];
const COMPOUND_HEADS: &[&str] = &[
    "和平", "胜利", "新华", "杏花", "桃园", "育才", "建设", "富力", "阳光", "锦绣", "星河", "枫林", "柳溪", "朝阳",
    "金域", "康乐", "怡园", "恒大", "滨河", "北城", "鼓楼", "书香", "龙潭", "东华", "晋阳", "汾河", "御景", "嘉园",
];
const COMPOUND_TAILS: &[&str] = &["小区", "苑", "家园", "花园", "公寓", "里", "新村", "家属院", "雅居", "华庭"];
const DEDICATED: &[&str] = &[
    "区人民医院",
    "第五中学",
    "杏花岭小学",
    "太原钢铁厂生活区",
    "山西大学附属中学",
    "区政务服务中心",
    "北城物流园",
    "晋商商贸城",
    "中涧河工业园",
    "省实验幼儿园",
    "铁路职工医院",
    "汽车客运北站",
];

/// Builds the demo district into an empty, migrated database.
pub async fn build(db: &Db, crypto: &Crypto, seed: u64) -> anyhow::Result<DemoSummary> {
    let regions = regions();
    let district = regions.iter().find(|r| r.level == "district").ok_or_else(|| anyhow::anyhow!("no district"))?;
    let subs: Vec<&Region> = regions.iter().filter(|r| r.level == "subdistrict").collect();
    let mut rng = StdRng::seed_from_u64(seed);

    // Grids per community: villages about 3 (rural grids are a natural
    // village of ~300 households), urban communities share the rest.
    let comms: Vec<&Region> = regions.iter().filter(|r| r.level == "community").collect();
    let is_village = |r: &Region| r.code[9..].parse::<u32>().unwrap_or(0) >= 200;
    let mut grid_counts: Vec<usize> =
        comms.iter().map(|c| if is_village(c) { rng.gen_range(2..=4) } else { rng.gen_range(4..=9) }).collect();
    // Nudge counts until the total matches the district's 897 grids.
    while grid_counts.iter().sum::<usize>() != TARGET_GRIDS {
        let i = rng.gen_range(0..grid_counts.len());
        let total: usize = grid_counts.iter().sum();
        let village = is_village(comms[i]);
        if total < TARGET_GRIDS && grid_counts[i] < if village { 5 } else { 11 } {
            grid_counts[i] += 1;
        } else if total > TARGET_GRIDS && grid_counts[i] > if village { 2 } else { 4 } {
            grid_counts[i] -= 1;
        }
    }

    let hash = password::hash(DEMO_PASSWORD.to_string()).await;
    let mut g = Gen {
        rng,
        crypto: crypto.clone(),
        names: NameGen::default(),
        next_id: 1,
        now: now_ms(),
        nodes: Batch::new("nodes", NODE_COLS),
        members: Batch::new("node_members", MEMBER_COLS),
        users: Batch::new(
            "users",
            &[
                "id",
                "username",
                "display_name",
                "password_hash",
                "node_id",
                "unit_id",
                "must_change_password",
                "created_at",
                "updated_at",
            ],
        ),
        roles: Batch::new("user_roles", &["user_id", "role_code", "node_id"]),
        units: Batch::new("units", &["id", "kind", "code", "name", "node_id", "created_at"]),
        next_unit: 0,
        next_person: 0,
        summary: DemoSummary::default(),
    };
    let mut next_user = 1i64;

    let district_code = RegionCode::parse(&district.code)?;
    let root = g.node(
        None,
        "district",
        district_code.as_str().into(),
        &district.name,
        None,
        None,
        None,
        Some(&DISTRICT_RECT),
        None,
        serde_json::json!({"centre": "杏花岭区综治中心", "urban_rural": "111"}),
    )?;
    g.user(next_user, "admin", "系统管理员", root.id, None, &hash, &["admin"]);
    next_user += 1;
    let district_centre = g.unit("centre", format!("centre:{}", district_code.as_str()), "杏花岭区综治中心", root.id);
    g.user(
        next_user,
        "zhongxin",
        "区综治中心值班长",
        root.id,
        Some(district_centre),
        &hash,
        &["shift_lead", "dispatcher", "acceptor", "leader"],
    );
    next_user += 1;
    // Functional departments (职能部门) that take dispatched matters, each
    // with one handler account `bm_<key>`.
    for (key, name) in DEPARTMENTS {
        let unit = g.unit("department", format!("dept:{key}"), name, root.id);
        g.user(next_user, &format!("bm_{key}"), name, root.id, Some(unit), &hash, &["dept_handler"]);
        next_user += 1;
    }

    // Subdistrict tiles are proportional to their grid counts.
    let sub_weights: Vec<f64> = subs
        .iter()
        .map(|s| comms.iter().zip(&grid_counts).filter(|(c, _)| c.parent == s.code).map(|(_, n)| *n as f64).sum())
        .collect();
    let sub_rects = subdivide(DISTRICT_RECT, &sub_weights);
    let mut worker_slots = TARGET_WORKERS;
    let mut all_grids = 0usize;
    let mut station_nodes: Vec<(String, i64)> = vec![];
    let mut overlays: Vec<OverlayRow> = vec![];

    for (sub, srect) in subs.iter().zip(sub_rects) {
        let code = RegionCode::parse(&sub.code)?;
        let town = code.is_town();
        let snode = g.node(
            Some(&root),
            "subdistrict",
            code.as_str().into(),
            &sub.name,
            None,
            None,
            None,
            Some(&srect),
            None,
            serde_json::json!({"centre": format!("{}综治中心", sub.name), "town": town}),
        )?;
        g.summary.subdistricts += 1;
        let sub_short = sub.name.trim_end_matches("街道").trim_end_matches('镇').to_string();
        station_nodes.push((format!("{sub_short}派出所"), snode.id));
        let centre = g.unit("centre", format!("centre:{}", code.as_str()), &format!("{}综治中心", sub.name), snode.id);
        g.user(
            next_user,
            &format!("jd{}", sub.code),
            &format!("{}综治中心", sub.name),
            snode.id,
            Some(centre),
            &hash,
            &["acceptor", "dispatcher", "shift_lead"],
        );
        next_user += 1;

        let mine: Vec<(usize, &&Region)> = comms.iter().enumerate().filter(|(_, c)| c.parent == sub.code).collect();
        let weights: Vec<f64> = mine.iter().map(|(i, _)| grid_counts[*i] as f64).collect();
        let crects = subdivide(srect, &weights);
        for ((ci, comm), crect) in mine.into_iter().zip(crects) {
            let ccode = RegionCode::parse(&comm.code)?;
            let village = is_village(comm);
            let cnode = g.node(
                Some(&snode),
                "community",
                ccode.as_str().into(),
                &comm.name,
                None,
                None,
                None,
                Some(&crect),
                None,
                serde_json::json!({"village": village, "urban_rural": if village { "220" } else { "111" }}),
            )?;
            g.summary.communities += 1;
            if village {
                g.summary.villages += 1;
            }
            let leader_uid = next_user;
            next_user += 1;
            let leader_name = g.person(cnode.id, "grid_leader", Some(leader_uid));
            let centre = g.unit(
                "centre",
                format!("centre:{}", ccode.as_str()),
                &format!("{}综治中心", community_short(&comm.name)),
                cnode.id,
            );
            g.user(
                leader_uid,
                &format!("sq{}", comm.code),
                &leader_name,
                cnode.id,
                Some(centre),
                &hash,
                &["grid_leader", "acceptor"],
            );
            if village {
                overlays.push((
                    "combat_unit".into(),
                    "village".into(),
                    format!("{}作战单元", community_short(&comm.name)),
                    cnode.id,
                    Some(leader_name.clone()),
                    serde_json::json!({"level": 2}),
                    vec![cnode.id],
                ));
            }

            // Grids: households drawn per grid, tiles proportional to them.
            let n = grid_counts[ci];
            let households: Vec<i64> =
                (0..n).map(|_| if village { g.rng.gen_range(180..=340) } else { g.rng.gen_range(280..=520) }).collect();
            let mut grects = subdivide(crect, &households.iter().map(|h| *h as f64).collect::<Vec<_>>());
            // Number west to east, north to south: by row (north first), then by west edge.
            let row_h = (crect.y1 - crect.y0) / 3.0;
            grects.sort_by(|a, b| {
                let ra = ((crect.y1 - a.y1) / row_h).floor() as i64;
                let rb = ((crect.y1 - b.y1) / row_h).floor() as i64;
                ra.cmp(&rb).then(a.x0.total_cmp(&b.x0))
            });
            let short = community_short(&comm.name);
            for (gi, (grect, hh)) in grects.iter().zip(&households).enumerate() {
                let seq = gi as u16 + 1;
                let gcode = GridCode::new(&ccode, seq)?;
                let dedicated = !village && g.rng.gen_bool(0.05);
                let name = if dedicated {
                    format!("{}专属网格", DEDICATED.choose(&mut g.rng).unwrap_or(&"单位"))
                } else {
                    format!("{short}第{}网格", CN_NUM.get(gi).copied().unwrap_or("二十"))
                };
                let population = (*hh as f64 * g.rng.gen_range(2.1..2.6)) as i64;
                let gnode = g.node(
                    Some(&cnode),
                    "grid",
                    gcode.to_string(),
                    &name,
                    Some(if dedicated { "dedicated" } else { "comprehensive" }),
                    Some(*hh),
                    Some(population),
                    Some(grect),
                    None,
                    serde_json::json!({"supervision_phone": "0351-12345"}),
                )?;
                g.summary.grids += 1;
                g.summary.households += hh;
                all_grids += 1;
                // 886 workers for 897 grids: the last few grids of some
                // communities are covered by their 总网格长 (一格一员).
                let remaining_grids = TARGET_GRIDS - all_grids + 1;
                if worker_slots >= remaining_grids || gi == 0 {
                    let uid = next_user;
                    next_user += 1;
                    let wname = g.person(gnode.id, "grid_worker", Some(uid));
                    let unit = g.unit("grid", format!("grid:{gcode}"), &name, gnode.id);
                    g.user(uid, &format!("wg{gcode}"), &wname, gnode.id, Some(unit), &hash, &["grid_worker"]);
                    worker_slots = worker_slots.saturating_sub(1);
                } else {
                    // The community's 总网格长 also serves as this grid's
                    // worker, with the 网格员 role there: a second post.
                    g.person(gnode.id, "grid_leader", Some(leader_uid));
                    g.summary.grid_leaders -= 1;
                    g.grant(leader_uid, "grid_worker", gnode.id);
                }
                if dedicated {
                    overlays.push((
                        "combat_unit".into(),
                        "enterprise".into(),
                        format!("{}作战单元", name.trim_end_matches("专属网格")),
                        gnode.id,
                        None,
                        serde_json::json!({"level": 3}),
                        vec![gnode.id],
                    ));
                }
                buildings(&mut g, &gnode, grect, *hh, village, &mut overlays)?;
            }
        }
    }

    // Police zones (大防区): a central station with its neighbours' areas.
    for (zi, chunk) in station_nodes.chunks(4).enumerate() {
        let centre = chunk[0].0.clone();
        let stations: Vec<String> = chunk.iter().map(|s| s.0.clone()).collect();
        overlays.push((
            "police_zone".into(),
            "major_zone".into(),
            format!("第{}大防区", CN_NUM[zi]),
            root.id,
            None,
            serde_json::json!({"centre_station": centre, "stations": stations}),
            chunk.iter().map(|s| s.1).collect(),
        ));
    }

    let mut tx = db.pool.begin().await?;
    g.nodes.flush(&mut tx).await?;
    g.units.flush(&mut tx).await?;
    g.users.flush(&mut tx).await?;
    g.roles.flush(&mut tx).await?;
    g.members.flush(&mut tx).await?;
    for (kind, subtype, name, anchor, leader, attrs, nodes) in &overlays {
        let id: i64 = sqlx::query(
            "insert into overlays (kind, subtype, name, anchor_node_id, leader, attrs, created_at, updated_at) \
             values ($1,$2,$3,$4,$5,$6,$7,$7) returning id",
        )
        .bind(kind)
        .bind(subtype)
        .bind(name)
        .bind(anchor)
        .bind(leader)
        .bind(attrs.to_string())
        .bind(g.now)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        for n in nodes {
            sqlx::query("insert into overlay_nodes (overlay_id, node_id) values ($1,$2)")
                .bind(id)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
    }
    g.summary.overlays = overlays.len();
    if db.backend == Backend::Postgres {
        // Explicit ids were inserted; move the identity sequences past them.
        for t in ["nodes", "users", "units"] {
            sqlx::query(&format!("select setval(pg_get_serial_sequence('{t}', 'id'), (select max(id) from {t}))"))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    dispatch_rules(db).await?;
    g.summary.orders = orders::generate(db, crypto, &mut g.rng, DEMO_ORDERS).await?;
    history::record(db, crypto).await?;
    tell_open_steps(db).await?;
    Ok(g.summary)
}

/// Tells the outbox of the latest step of every order still waiting on
/// someone (dispatched and not yet signed, signed, overdue, an extension
/// asked for): the generated history was written without the outbox, so
/// the notifications deliver these at the server's first start and the
/// demo accounts find unread items in their inboxes.
async fn tell_open_steps(db: &Db) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "select o.id, o.tracking_code, o.node_id, o.version, e.action, e.from_state, e.to_state, e.actor_user_id, e.at \
         from orders o join order_events e on e.order_id = o.id \
           and e.seq = (select max(x.seq) from order_events x where x.order_id = o.id) \
         where o.state in ('pending_sign', 'handling') \
           and e.action in ('dispatch', 'reassign', 'sign', 'mark_overdue', 'request_extension', 'verify_fail') \
         order by e.at, o.id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut events = vec![];
    for r in &rows {
        let action: String = r.try_get("action")?;
        let from: String = r.try_get("from_state")?;
        let to: String = r.try_get("to_state")?;
        let code: String = r.try_get("tracking_code")?;
        events.push(crate::orders::store::past_step_event(
            &action,
            &from,
            &to,
            r.try_get("version")?,
            r.try_get("id")?,
            &code,
            r.try_get("actor_user_id")?,
            r.try_get("node_id")?,
            r.try_get("at")?,
        ));
    }
    match db.backend {
        Backend::Sqlite => {
            db.write(move |conn| {
                for e in &events {
                    e.append_sqlite(conn)?;
                }
                Ok(())
            })
            .await?
        }
        Backend::Postgres => {
            let mut tx = db.pool.begin().await?;
            for e in &events {
                e.append_in(&mut tx).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// The demo district's dispatch catalogue (派单目录): district-wide rules
/// for the matters that need several units, and the town's own rule for
/// its environment (a 镇 handles 市容环卫 itself, the bureau assists).
/// Assisting units: departments by key, or `@subdistrict` / `@community`
/// for the local centres.
const DISPATCH_RULES: &[(&str, Option<&str>, &[&str], &str)] = &[
    ("0102", None, &["@subdistrict"], "小事不出社区，大事街道协调"),
    ("0105", Some("police"), &["@community"], "社区配合开展反诈宣传"),
    ("0202", None, &["housing"], "住建局督促物业企业整改"),
    ("0204", Some("civil_affairs"), &["@community"], "社区入户核实困难情况"),
    ("0306", Some("urban_mgmt"), &["housing", "@subdistrict"], ""),
    ("0307", Some("urban_mgmt"), &["market", "@subdistrict"], ""),
    ("0308", Some("market"), &["health"], ""),
    ("04", Some("emergency"), &["@subdistrict"], "突发事件由应急局牵头，属地街道先期处置"),
    ("0401", Some("fire"), &["emergency", "@subdistrict"], ""),
    ("0402", Some("emergency"), &["fire", "housing", "@subdistrict"], "燃气企业同步到场"),
    ("0403", Some("housing"), &["urban_mgmt", "emergency", "@subdistrict"], ""),
    ("0405", Some("health"), &["emergency", "@subdistrict", "@community"], ""),
];

async fn dispatch_rules(db: &Db) -> anyhow::Result<()> {
    let unit = |code: String| async move {
        let id: i64 =
            sqlx::query("select id from units where code = $1").bind(code).fetch_one(&db.pool).await?.try_get(0)?;
        anyhow::Ok(id)
    };
    let root: i64 =
        sqlx::query("select id from nodes where parent_id is null").fetch_one(&db.pool).await?.try_get(0)?;
    let now = crate::platform::db::now_ms();
    let insert = "insert into dispatch_rules (category_code, node_id, lead_unit_id, assisting, assist_local, note, \
                  updated_at) values ($1, $2, $3, $4, $5, $6, $7)";
    for (category, lead, assisting, note) in DISPATCH_RULES {
        let lead = match lead {
            Some(key) => Some(unit(format!("dept:{key}")).await?),
            None => None,
        };
        let (mut ids, mut local) = (vec![], vec![]);
        for a in *assisting {
            match a.strip_prefix('@') {
                Some(level) => local.push(level),
                None => ids.push(unit(format!("dept:{a}")).await?),
            }
        }
        sqlx::query(insert)
            .bind(*category)
            .bind(root)
            .bind(lead)
            .bind(serde_json::to_string(&ids)?)
            .bind(serde_json::to_string(&local)?)
            .bind(Some(*note).filter(|n| !n.is_empty()))
            .bind(now)
            .execute(&db.pool)
            .await?;
    }
    // The town (乡镇) keeps its environment work: its centre leads.
    let town = sqlx::query(
        "select n.id, u.id from nodes n join units u on u.node_id = n.id and u.kind = 'centre' \
         where n.kind = 'subdistrict' and n.name like '%镇' order by n.id limit 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    if let Some(r) = town {
        let (node, centre): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        let bureau = unit("dept:urban_mgmt".into()).await?;
        for category in ["0301", "0305"] {
            sqlx::query(insert)
                .bind(category)
                .bind(node)
                .bind(Some(centre))
                .bind(serde_json::to_string(&[bureau])?)
                .bind("[]")
                .bind(Some("乡镇统筹辖区环境卫生，城管局业务指导"))
                .bind(now)
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(())
}

type OverlayRow = (String, String, String, i64, Option<String>, serde_json::Value, Vec<i64>);

/// Buildings of one grid: residential compounds (小区) of several 楼栋 in
/// town, 院落 in villages, about one building per 15–25 households.
fn buildings(
    g: &mut Gen,
    grid: &NodeRow,
    rect: &Rect,
    households: i64,
    village: bool,
    overlays: &mut Vec<OverlayRow>,
) -> anyhow::Result<()> {
    let gcode = GridCode::parse(&grid.code)?;
    let per = if village { g.rng.gen_range(12..=18) } else { g.rng.gen_range(14..=24) };
    let count = (households / per).max(3);
    let compound = format!(
        "{}{}",
        COMPOUND_HEADS.choose(&mut g.rng).unwrap_or(&"和平"),
        COMPOUND_TAILS.choose(&mut g.rng).unwrap_or(&"小区")
    );
    if !village && g.rng.gen_bool(0.15) {
        overlays.push((
            "combat_unit".into(),
            "compound".into(),
            format!("{compound}作战单元"),
            grid.id,
            None,
            serde_json::json!({"level": 3}),
            vec![grid.id],
        ));
    }
    let mut left = households;
    for b in 1..=count {
        let code = BuildingCode::new(&gcode, b as u32)?;
        // These draws only keep the demo's random sequence (and so every
        // name and place after them) as it was; the shape comes from the
        // households below.
        let drawn_units = if village {
            g.rng.gen_range(1..=3);
            1
        } else {
            [6, 6, 7, 11, 18, 26, 33].choose(&mut g.rng);
            g.rng.gen_range(1..=4)
        };
        let hh = if b == count { left.max(1) } else { (households / count).max(1) };
        left -= hh.min(left);
        let (floors, units) = building_shape(hh, village, b as u64 ^ gcode.to_string().parse::<u64>().unwrap_or(0));
        let name = if village { format!("{b}号院") } else { format!("{compound}{b}号楼") };
        let point = (
            g.rng.gen_range(rect.x0 + (rect.x1 - rect.x0) * 0.05..rect.x1 - (rect.x1 - rect.x0) * 0.05),
            g.rng.gen_range(rect.y0 + (rect.y1 - rect.y0) * 0.05..rect.y1 - (rect.y1 - rect.y0) * 0.05),
        );
        let pop = (hh as f64 * g.rng.gen_range(2.0..2.8)) as i64;
        let bnode = g.node(
            Some(grid),
            "building",
            code.to_string(),
            &name,
            None,
            Some(hh),
            Some(pop),
            None,
            Some(point),
            serde_json::json!({
                "compound": if village { serde_json::Value::Null } else { compound.clone().into() },
                "floors": floors, "units": units, "use": "01"
            }),
        )?;
        g.summary.buildings += 1;
        if !village && drawn_units >= 2 && g.rng.gen_bool(0.35) {
            g.person(bnode.id, "building_steward", None);
        }
    }
    Ok(())
}

/// Storeys and stairwell units (单元) of a building that houses `hh`
/// households: a village courtyard has one to three storeys; a town
/// building is a walk-up of five to seven storeys with two flats per floor
/// per unit and two or three units, as many as its households need, or
/// for more households than a walk-up holds a high-rise of 18 to 33 storeys
/// with two to four flats per floor per unit.
pub fn building_shape(hh: i64, village: bool, seed: u64) -> (i64, i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    if village {
        return (rng.gen_range(1..=3), 1);
    }
    let floors = *[5, 6, 6, 6, 7].choose(&mut rng).unwrap_or(&6);
    if hh <= floors * 3 * 2 {
        let units = if hh > floors * 2 * 2 { 3 } else { 2 };
        return (floors, units);
    }
    let floors = rng.gen_range(18..=33);
    let flats = rng.gen_range(2..=4);
    let units = ((hh + floors * flats - 1) / (floors * flats)).clamp(1, 4);
    if floors * units * flats < hh {
        // Four units are as wide as a tower gets: it grows taller instead.
        return (((hh + units * 4 - 1) / (units * 4)).clamp(18, 33), units);
    }
    (floors, units)
}

/// Whether the database already holds a tree (a built demo, or real data).
pub async fn is_built(db: &Db) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query("select count(*) from nodes").fetch_one(&db.pool).await?.try_get(0)?;
    Ok(n > 0)
}

/// Erases the demo database named by `url` (asked for with `--reset`).
pub async fn erase(url: &DbUrl) -> anyhow::Result<()> {
    match url {
        DbUrl::Sqlite { path } => {
            for suffix in ["", "-wal", "-shm"] {
                let p = format!("{}{suffix}", path.display());
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(anyhow::anyhow!("无法删除 {p}: {e}")),
                }
            }
        }
        DbUrl::Postgres { .. } => {
            let db = Db::connect(url).await?;
            sqlx::raw_sql("drop schema public cascade; create schema public").execute(&db.pool).await?;
        }
    }
    Ok(())
}

/// Creates the root region node and a first administrator in an empty database.
pub async fn init_root(db: &Db, code: &str, name: &str, admin: &str, pw: &str) -> anyhow::Result<String> {
    if is_built(db).await? {
        anyhow::bail!("数据库中已有区划数据，不能重复初始化");
    }
    let code = RegionCode::parse(code).map_err(|e| anyhow::anyhow!("区划代码无效：{e}"))?;
    let kind = match code.level() {
        crate::kernel::codes::RegionLevel::Province => "province",
        crate::kernel::codes::RegionLevel::City => "city",
        crate::kernel::codes::RegionLevel::District => "district",
        _ => anyhow::bail!("根节点须为省、市或区县"),
    };
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let id: i64 = sqlx::query(
        "insert into nodes (parent_id, path, depth, kind, code, name, created_at, updated_at) \
         values (null, '#init', 0, $1, $2, $3, $4, $4) returning id",
    )
    .bind(kind)
    .bind(code.as_str())
    .bind(name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    sqlx::query("update nodes set path = $1 where id = $2").bind(format!("/{id}/")).bind(id).execute(&mut *tx).await?;
    let hash = password::hash(pw.to_string()).await;
    auth::create_user(
        &mut tx,
        auth::NewUser {
            username: admin,
            display_name: "系统管理员",
            password_hash: &hash,
            node_id: id,
            roles: &["admin"],
            must_change_password: true,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    tx.commit().await?;
    Ok(code.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildings_hold_their_households_in_a_plausible_shape() {
        for hh in 1..=400i64 {
            for seed in 0..20u64 {
                let (floors, units) = building_shape(hh, false, seed);
                if floors <= 7 {
                    assert!((5..=7).contains(&floors) && (2..=3).contains(&units), "walk-up {floors}/{units} for {hh}");
                    assert!(floors * units * 2 >= hh, "{hh} households in {floors} floors × {units} units");
                } else {
                    assert!((18..=33).contains(&floors) && (1..=4).contains(&units), "high-rise {floors}/{units}");
                    assert!(floors * units * 4 >= hh.min(33 * 4 * 4), "{hh} households in {floors} × {units}");
                }
                let (floors, units) = building_shape(hh, true, seed);
                assert!((1..=3).contains(&floors) && units == 1);
            }
        }
    }

    #[test]
    fn residents_have_valid_taiyuan_id_numbers_that_match_them() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..5000u32 {
            let birth = chrono::NaiveDate::from_ymd_opt(1966 + (n % 36) as i32, 1 + n % 12, 1 + n % 28).unwrap();
            let male = n % 3 == 0;
            let id = resident_id_number(n, birth, male);
            assert_eq!(IdNumber::parse(id.as_str()).as_ref(), Ok(&id), "{id:?}");
            assert!(id.region_prefix().starts_with("1401"), "{id:?}");
            assert_eq!((id.birth_date(), id.is_male()), (birth, male), "{id:?}");
            assert_eq!(resident_id_number(n, birth, male), id, "deterministic");
            seen.insert(id);
        }
        assert_eq!(seen.len(), 5000, "no two residents share a number");
    }

    #[test]
    fn subdivision_tiles_the_rectangle() {
        let weights: Vec<f64> = (1..=13).map(|i| (i * 7 % 5 + 1) as f64).collect();
        let tiles = subdivide(DISTRICT_RECT, &weights);
        assert_eq!(tiles.len(), weights.len());
        let area = |r: &Rect| (r.x1 - r.x0) * (r.y1 - r.y0);
        let total: f64 = tiles.iter().map(area).sum();
        assert!((total - area(&DISTRICT_RECT)).abs() < 1e-12);
        let wsum: f64 = weights.iter().sum();
        for (t, w) in tiles.iter().zip(&weights) {
            assert!((area(t) / area(&DISTRICT_RECT) - w / wsum).abs() < 1e-9);
        }
        for (i, a) in tiles.iter().enumerate() {
            for b in &tiles[i + 1..] {
                let ox = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
                let oy = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
                assert!(ox * oy < 1e-15, "tiles overlap");
            }
        }
    }

    #[test]
    fn the_real_region_list_is_embedded() {
        let r = regions();
        assert_eq!(r.iter().filter(|r| r.level == "subdistrict").count(), 12);
        assert_eq!(r.iter().filter(|r| r.level == "community").count(), 146);
    }
}
