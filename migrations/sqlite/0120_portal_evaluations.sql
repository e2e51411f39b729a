-- Every evaluation (评单) as data, one row per rating, so that 满意率 and
-- the reasons for 不满意 can be counted without reading event text. `seq`
-- is the order event that recorded it; `reasons` holds the picked reason
-- codes, comma-separated (unresolved, too_slow, attitude, not_contacted).
create table order_evaluations (
    order_id bigint not null references orders(id),
    seq bigint not null,
    at bigint not null,
    rating text not null check (rating in ('satisfied','fairly_satisfied','dissatisfied')),
    reasons text not null default '',
    primary key (order_id, seq)
);
create index order_evaluations_at on order_evaluations(at);

-- Categories residents may pick on the portal. Internal ones (e.g. 重点人员动态,
-- reported by grid workers about special populations) are for staff only;
-- administrators change the flag in the catalogue.
alter table categories add column resident_facing bigint not null default 1;
update categories set resident_facing = 0 where code = '0104';

-- 网格员公示: a member's work phone published on the portal. Separate from
-- the (encrypted, masked) personal mobile, and published only when the
-- flag is set.
alter table node_members add column public_phone text;
alter table node_members add column public_phone_published bigint not null default 0;
