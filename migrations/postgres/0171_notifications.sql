-- The in-app inbox (站内通知): one row per recipient and event, made by the
-- notifications' outbox subscriber (`notify`). The text is rendered when
-- the notice is made, from the message catalogue, with codes, a category,
-- a place and a deadline only (never a reporter's name, contact or ID
-- number). (user_id, event_id) makes a repeated delivery of an event a
-- no-op. The id orders a user's inbox and is the live stream's event id.
create table notifications (
    id bigserial primary key,
    user_id bigint not null references users(id),
    event_id bigint not null,
    topic text not null,
    object_type text not null,
    object_id bigint not null,
    body text not null,
    urgent bigint not null default 0,
    created_at bigint not null,
    read_at bigint,
    unique (user_id, event_id)
);
-- A user's inbox, newest first, and their unread count.
create index notifications_user on notifications(user_id, id);
create index notifications_unread on notifications(user_id) where read_at is null;
