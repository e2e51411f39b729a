-- Several subscribers of the outbox (the notifications, later the robots
-- and SMS), each with its own delivery state, so that one subscriber's
-- delivery of an event neither hides it from another nor waits for it.
-- The webhook keeps the state columns on `outbox_events` (see
-- `platform::outbox`).

-- Each subscriber's cursor: every event up to it (of the subscriber's
-- topics) has a delivery row. It trails the newest events by a settling
-- time, so an event whose transaction commits after a later one's is not
-- passed over.
create table outbox_subscribers (
    name text primary key,
    cursor_id bigint not null default 0,
    created_at bigint not null
);

create table outbox_deliveries (
    subscriber text not null,
    event_id bigint not null,
    -- Deliveries tried (counted when claimed).
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    lease_until bigint,
    lease_owner text,
    state text not null default 'pending' check (state in ('pending', 'done', 'dead')),
    last_error text,
    -- When it was delivered, or given up on (dead).
    finished_at bigint,
    primary key (subscriber, event_id)
);
-- What a claim walks: the subscriber's pending deliveries that are due.
create index outbox_deliveries_due on outbox_deliveries(subscriber, state, next_attempt_at, event_id);
create index outbox_deliveries_event on outbox_deliveries(event_id);
