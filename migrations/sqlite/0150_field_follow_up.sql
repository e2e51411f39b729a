-- The field app and 回访 (follow-up calls).

-- 回访: the roles that call residents back may see the reporter's full
-- contact with a stated reason (audited): the community's 网格长, the
-- centres' 受理员 and 值班长.
insert into role_permissions (role_code, permission) values
    ('grid_leader','orders.follow_up'), ('acceptor','orders.follow_up'), ('shift_lead','orders.follow_up');

-- 即报即办: which matters a reporting grid worker may handle on the spot and
-- close without dispatch: 'none', 'normal' (not when urgent) or 'any'.
alter table categories add column on_spot text not null default 'none';
-- Small matters a worker commonly settles at once: a neighbours' dispute,
-- noise, property service, litter, rubbish, street stalls, small repairs.
update categories set on_spot = 'normal'
    where code = '0102' or code = '0201' or code = '0202' or code = '0301' or code = '0305' or code = '0307'
        or code = '0309';

-- Set when an order was closed on the spot, for 即报即办率.
alter table orders add column on_spot bigint not null default 0;

-- The latest 回访 call's outcome (the full record is on the timeline): the
-- 回访 list shows closed orders nobody has reached yet.
alter table orders add column follow_up text;

-- 已办: the steps a person took, newest first.
create index order_events_actor on order_events(actor_user_id, at);
