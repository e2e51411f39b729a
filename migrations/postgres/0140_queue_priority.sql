-- The work queues open with the most pressing orders first: overdue, then
-- urgent, then the nearest deadline, then the longest waiting (issue 18).
-- One index per depth of the caller's area, as for the newest-first order,
-- so a page of a queue is an index walk and never a sort of the whole area.
create index orders_q0_priority on orders(state, overdue desc, urgency desc, deadline_at, created_at, id);
create index orders_q1_priority on orders(area1, state, overdue desc, urgency desc, deadline_at, created_at, id);
create index orders_q2_priority on orders(area2, state, overdue desc, urgency desc, deadline_at, created_at, id);
create index orders_q3_priority on orders(area3, state, overdue desc, urgency desc, deadline_at, created_at, id);
