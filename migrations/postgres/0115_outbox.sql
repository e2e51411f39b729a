-- The outbox: events a service appends in the transaction of the change
-- they tell of, delivered afterwards, at least once, by consumers (see
-- `platform::outbox`). A consumer claims a batch by setting the lease
-- columns; an event whose lease ran out (its consumer died) is claimed
-- again. Payloads name objects by id and never carry personal data.
create table outbox_events (
    id bigserial primary key,
    topic text not null,
    payload text not null,
    created_at bigint not null,
    -- Deliveries tried (counted when claimed).
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    lease_until bigint,
    lease_owner text,
    state text not null default 'pending' check (state in ('pending', 'done', 'dead')),
    last_error text,
    -- When it was delivered, or given up on (dead).
    finished_at bigint
);
-- What a claim walks: the pending events that are due, oldest first.
create index outbox_events_due on outbox_events(state, next_attempt_at, id);

-- Administrators list dead letters and send them again.
insert into role_permissions (role_code, permission) values ('admin','outbox.manage');
