-- The region and grid tree (一张网): district → subdistrict → community → grid → building.
-- `path` is the materialised chain of ids ('/1/12/345/'), so a subtree is one
-- index range scan (path >= '/1/12/' and path < '/1/120') instead of a walk.
-- `code` is the 统计用区划代码 (12 digits) for region nodes, community code + 3
-- digits for grids, grid code + 5 digits for buildings.
create table nodes (
    id integer primary key,
    parent_id bigint references nodes(id),
    path text not null unique,
    depth bigint not null,
    kind text not null check (kind in ('province','city','district','subdistrict','community','grid','building')),
    code text not null,
    name text not null,
    status text not null default 'active' check (status in ('active','retired')),
    grid_type text check (grid_type in ('comprehensive','dedicated')),
    households bigint,
    population bigint,
    area_m2 double precision,
    polygon text,
    min_lon double precision, min_lat double precision,
    max_lon double precision, max_lat double precision,
    lon double precision, lat double precision,
    attrs text not null default '{}',
    version bigint not null default 1,
    created_at bigint not null,
    updated_at bigint not null,
    retired_at bigint
);
create unique index nodes_active_code on nodes(code) where status = 'active';
create index nodes_parent on nodes(parent_id);
create index nodes_kind_path on nodes(kind, path);
create index nodes_bbox on nodes(kind, min_lon, max_lon) where polygon is not null;

-- People who serve a node: 网格长, 网格员, 楼栋长 (GB/T 31000 tables 8 and 9).
create table node_members (
    id integer primary key,
    node_id bigint not null references nodes(id),
    role text not null check (role in ('grid_leader','grid_worker','building_steward','assistant')),
    name text not null,
    gender text not null,
    ethnicity text not null,
    political_status text not null,
    birth_date text not null,
    education text not null,
    mobile text not null,
    phone text,
    user_id bigint,
    started_at bigint not null,
    ended_at bigint,
    created_at bigint not null
);
create index node_members_node on node_members(node_id) where ended_at is null;

-- Overlays on the tree: 作战单元 and police zones (大防区).
create table overlays (
    id integer primary key,
    kind text not null check (kind in ('combat_unit','police_zone')),
    subtype text not null,
    name text not null,
    anchor_node_id bigint not null references nodes(id),
    leader text,
    attrs text not null default '{}',
    status text not null default 'active',
    created_at bigint not null,
    updated_at bigint not null
);
create table overlay_nodes (
    overlay_id bigint not null references overlays(id),
    node_id bigint not null references nodes(id),
    primary key (overlay_id, node_id)
);

create table roles (
    code text primary key,
    name text not null,
    builtin bigint not null default 1
);

create table users (
    id integer primary key,
    username text not null unique,
    display_name text not null,
    password_hash text not null,
    node_id bigint not null references nodes(id),
    must_change_password bigint not null default 0,
    disabled bigint not null default 0,
    created_at bigint not null,
    updated_at bigint not null,
    last_login_at bigint
);
create table user_roles (
    user_id bigint not null references users(id),
    role_code text not null references roles(code),
    node_id bigint not null references nodes(id),
    primary key (user_id, role_code, node_id)
);
-- Sessions are stored by the SHA-256 of their token; the token itself is never kept.
create table sessions (
    token_hash text primary key,
    user_id bigint not null references users(id),
    kind text not null check (kind in ('browser','api')),
    csrf_token text not null,
    created_at bigint not null,
    last_seen_at bigint not null,
    expires_at bigint not null,
    client_addr text
);
create index sessions_user on sessions(user_id);

-- Built-in roles (permissions per role arrive with the identity module).
insert into roles (code, name) values
    ('admin', '系统管理员'), ('leader', '中心领导'), ('acceptor', '受理员'), ('dispatcher', '派遣员'),
    ('shift_lead', '值班长'), ('dept_handler', '部门办理人'), ('grid_leader', '网格长'),
    ('grid_worker', '网格员'), ('police', '民警'), ('aux_police', '辅警'), ('volunteer', '志愿者'),
    ('resident', '居民');
