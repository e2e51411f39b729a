-- Files attached to work orders: photos and documents. The bytes live under
-- <data_dir>/attachments/, named by their SHA-256, so a row is the only
-- thing that says whose a file is and who may see it.
--
-- `event_id` is set when an action (处置, 反馈, 核查) carries the file; until
-- then it belongs to the order alone. `public` marks what the resident
-- portal may show, and only ever as the re-encoded copy without EXIF, XMP
-- or GPS: the reporter's own photos and the result photos of 反馈.
-- Documents are never public.
create table attachments (
    id integer primary key,
    order_id bigint not null references orders(id),
    event_id bigint references order_events(id),
    kind text not null check (kind in ('image','document')),
    mime text not null,
    size bigint not null,
    sha256 text not null,
    name text not null,
    -- null: a resident, through the tracking code
    uploaded_by bigint references users(id),
    uploader_name text not null,
    public bigint not null default 0,
    has_thumbnail bigint not null default 0,
    width bigint,
    height bigint,
    created_at bigint not null
);
create index attachments_order on attachments(order_id, id);
create index attachments_event on attachments(event_id);
