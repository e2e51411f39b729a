-- A category filter inside a scope (e.g. all 0309 matters of one 街道) is
-- answered by one index walk at the scope's depth instead of checking
-- every order of the scope (measured: 98 ms → see BENCHMARKS.md).
create index orders_a1_category on orders(area1, category_code, created_at);
create index orders_a2_category on orders(area2, category_code, created_at);
create index orders_a3_category on orders(area3, category_code, created_at);
