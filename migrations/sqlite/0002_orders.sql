-- Units that receive work: governance centres (综治中心) of each level,
-- grids, and functional departments (职能部门).
create table units (
    id integer primary key,
    kind text not null check (kind in ('centre','grid','department')),
    code text not null unique,
    name text not null,
    node_id bigint not null references nodes(id),
    status text not null default 'active',
    created_at bigint not null
);
create index units_node on units(node_id);
alter table users add column unit_id bigint references units(id);

-- The category catalogue and its time limits, editable by administrators.
-- `owner_unit` names the department a matter belongs to (国办函〔2025〕66号:
-- such matters are not pushed down to communities or grids).
create table categories (
    code text primary key,
    parent_code text references categories(code),
    name text not null,
    owner_unit text,
    sign_limit text not null default '{"unit":"working_hours","amount":2}',
    handle_limit text not null default '{"unit":"working_days","amount":5}',
    urgent_handle_limit text not null default '{"unit":"working_days","amount":1}',
    evaluate_limit text not null default '{"unit":"working_days","amount":3}',
    sort bigint not null default 0
);

-- Holiday arrangements (节假日与调休), seeded from the State Council's
-- published calendars and editable each year.
create table calendar_days (
    day text primary key,
    kind text not null check (kind in ('holiday','workday')),
    name text not null
);

-- One row per work order: the current state, derived from its events, kept
-- for queues and counts. `facts` is the machine's aggregate as JSON.
create table orders (
    id integer primary key,
    tracking_code text not null unique,
    source text not null,
    category_code text not null references categories(code),
    urgency text not null check (urgency in ('normal','urgent')),
    title text not null,
    description text not null,
    address text not null,
    lon double precision,
    lat double precision,
    node_id bigint not null references nodes(id),
    node_path text not null,
    level text not null,
    state text not null,
    lead_unit_id bigint references units(id),
    reporter_user_id bigint references users(id),
    reporter_name text,
    reporter_contact text,
    facts text not null,
    deadline_kind text,
    deadline_start bigint,
    deadline_at bigint,
    paused_at bigint,
    overdue bigint not null default 0,
    rating text,
    version bigint not null default 1,
    created_at bigint not null,
    updated_at bigint not null,
    closed_at bigint
);
create index orders_scope_state on orders(node_path, state);
create index orders_state_created on orders(state, created_at);
create index orders_lead_state on orders(lead_unit_id, state);
create index orders_deadline on orders(deadline_at) where deadline_at is not null and overdue = 0;

-- The append-only history of every order; the orders row is a cache of it.
create table order_events (
    id integer primary key,
    order_id bigint not null references orders(id),
    seq bigint not null,
    at bigint not null,
    actor_user_id bigint,
    actor_name text not null,
    actor_role text not null,
    action text not null,
    from_state text not null,
    to_state text not null,
    reason text,
    data text not null,
    unique (order_id, seq)
);

-- 督办/催办/超期 notices to units.
create table order_notices (
    id integer primary key,
    order_id bigint not null references orders(id),
    unit_id bigint references units(id),
    kind text not null check (kind in ('overdue','supervise','urge')),
    note text,
    created_at bigint not null,
    read_at bigint
);
create index order_notices_unit on order_notices(unit_id, read_at);

-- The reference row for the insert-ceiling benchmark endpoint.
create table bench_rows (
    id integer primary key,
    payload text not null,
    created_at bigint not null
);

-- The default category catalogue: the four classes of seed 002 (平安建设, 社情民意,
-- 公共服务, 应急处置) with common sub-categories and the department each belongs to.
insert into categories (code, parent_code, name, owner_unit, sign_limit, handle_limit, urgent_handle_limit, evaluate_limit, sort) values
('01',null,'平安建设',null,'{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',0),
('0101','01','治安隐患','police','{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',1),
('0102','01','矛盾纠纷',null,'{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',2),
('0103','01','消防安全隐患','fire','{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',3),
('0104','01','重点人员动态','police','{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',4),
('0105','01','电信网络诈骗线索','police','{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',5),
('0199','01','其他平安建设事项',null,'{"unit":"working_hours","amount":2}','{"unit":"working_days","amount":5}','{"unit":"working_days","amount":1}','{"unit":"working_days","amount":3}',6),
('02',null,'社情民意',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',7),
('0201','02','噪音扰民',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',8),
('0202','02','物业服务',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',9),
('0203','02','意见建议',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',10),
('0204','02','困难群众诉求','civil_affairs','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',11),
('0299','02','其他社情民意',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',12),
('03',null,'公共服务',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',13),
('0301','03','市容环境卫生','urban_mgmt','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',14),
('0302','03','道路设施损坏','housing','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',15),
('0303','03','路灯不亮','urban_mgmt','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',16),
('0304','03','供水供热','housing','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',17),
('0305','03','垃圾清运','urban_mgmt','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',18),
('0306','03','违章搭建','urban_mgmt','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',19),
('0307','03','占道经营','urban_mgmt','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',20),
('0308','03','食品安全','market','{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',21),
('0309','03','小区公共设施维修',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',22),
('0399','03','其他公共服务',null,'{"unit":"working_hours","amount":4}','{"unit":"working_days","amount":7}','{"unit":"working_days","amount":2}','{"unit":"working_days","amount":3}',23),
('04',null,'应急处置',null,'{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',24),
('0401','04','火情险情','fire','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',25),
('0402','04','燃气泄漏','emergency','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',26),
('0403','04','积水内涝','housing','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',27),
('0404','04','安全生产事故','emergency','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',28),
('0405','04','突发公共卫生事件','health','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',29),
('0499','04','其他突发事件','emergency','{"unit":"calendar_hours","amount":1}','{"unit":"working_hours","amount":4}','{"unit":"calendar_hours","amount":2}','{"unit":"working_days","amount":3}',30);

-- Statutory holidays and make-up working days 2024–2026 (State Council notices).
insert into calendar_days (day, kind, name) values
('2024-01-01','holiday','元旦'),
('2024-02-04','workday','春节'),
('2024-02-10','holiday','春节'),
('2024-02-11','holiday','春节'),
('2024-02-12','holiday','春节'),
('2024-02-13','holiday','春节'),
('2024-02-14','holiday','春节'),
('2024-02-15','holiday','春节'),
('2024-02-16','holiday','春节'),
('2024-02-17','holiday','春节'),
('2024-02-18','workday','春节'),
('2024-04-04','holiday','清明节'),
('2024-04-05','holiday','清明节'),
('2024-04-06','holiday','清明节'),
('2024-04-07','workday','清明节'),
('2024-04-28','workday','劳动节'),
('2024-05-01','holiday','劳动节'),
('2024-05-02','holiday','劳动节'),
('2024-05-03','holiday','劳动节'),
('2024-05-04','holiday','劳动节'),
('2024-05-05','holiday','劳动节'),
('2024-05-11','workday','劳动节'),
('2024-06-10','holiday','端午节'),
('2024-09-14','workday','中秋节'),
('2024-09-15','holiday','中秋节'),
('2024-09-16','holiday','中秋节'),
('2024-09-17','holiday','中秋节'),
('2024-09-29','workday','国庆节'),
('2024-10-01','holiday','国庆节'),
('2024-10-02','holiday','国庆节'),
('2024-10-03','holiday','国庆节'),
('2024-10-04','holiday','国庆节'),
('2024-10-05','holiday','国庆节'),
('2024-10-06','holiday','国庆节'),
('2024-10-07','holiday','国庆节'),
('2024-10-12','workday','国庆节'),
('2025-01-01','holiday','元旦'),
('2025-01-26','workday','春节'),
('2025-01-28','holiday','春节'),
('2025-01-29','holiday','春节'),
('2025-01-30','holiday','春节'),
('2025-01-31','holiday','春节'),
('2025-02-01','holiday','春节'),
('2025-02-02','holiday','春节'),
('2025-02-03','holiday','春节'),
('2025-02-04','holiday','春节'),
('2025-02-08','workday','春节'),
('2025-04-04','holiday','清明节'),
('2025-04-05','holiday','清明节'),
('2025-04-06','holiday','清明节'),
('2025-04-27','workday','劳动节'),
('2025-05-01','holiday','劳动节'),
('2025-05-02','holiday','劳动节'),
('2025-05-03','holiday','劳动节'),
('2025-05-04','holiday','劳动节'),
('2025-05-05','holiday','劳动节'),
('2025-05-31','holiday','端午节'),
('2025-06-01','holiday','端午节'),
('2025-06-02','holiday','端午节'),
('2025-09-28','workday','国庆节'),
('2025-10-01','holiday','国庆节'),
('2025-10-02','holiday','国庆节'),
('2025-10-03','holiday','国庆节'),
('2025-10-04','holiday','国庆节'),
('2025-10-05','holiday','国庆节'),
('2025-10-06','holiday','中秋节'),
('2025-10-07','holiday','国庆节'),
('2025-10-08','holiday','国庆节'),
('2025-10-11','workday','国庆节'),
('2026-01-01','holiday','元旦'),
('2026-01-02','holiday','元旦'),
('2026-01-03','holiday','元旦'),
('2026-01-04','workday','元旦'),
('2026-02-14','workday','春节'),
('2026-02-15','holiday','春节'),
('2026-02-16','holiday','春节'),
('2026-02-17','holiday','春节'),
('2026-02-18','holiday','春节'),
('2026-02-19','holiday','春节'),
('2026-02-20','holiday','春节'),
('2026-02-21','holiday','春节'),
('2026-02-22','holiday','春节'),
('2026-02-23','holiday','春节'),
('2026-02-28','workday','春节'),
('2026-04-04','holiday','清明节'),
('2026-04-05','holiday','清明节'),
('2026-04-06','holiday','清明节'),
('2026-05-01','holiday','劳动节'),
('2026-05-02','holiday','劳动节'),
('2026-05-03','holiday','劳动节'),
('2026-05-04','holiday','劳动节'),
('2026-05-05','holiday','劳动节'),
('2026-05-09','workday','劳动节'),
('2026-06-19','holiday','端午节'),
('2026-06-20','holiday','端午节'),
('2026-06-21','holiday','端午节'),
('2026-09-20','workday','国庆节'),
('2026-09-25','holiday','中秋节'),
('2026-09-26','holiday','中秋节'),
('2026-09-27','holiday','中秋节'),
('2026-10-01','holiday','国庆节'),
('2026-10-02','holiday','国庆节'),
('2026-10-03','holiday','国庆节'),
('2026-10-04','holiday','国庆节'),
('2026-10-05','holiday','国庆节'),
('2026-10-06','holiday','国庆节'),
('2026-10-07','holiday','国庆节'),
('2026-10-10','workday','国庆节');
