-- Members' 公民身份号码 (GB 11643), optional: SM4-GCM ciphertext
-- (`id_number_enc`, v1:<key_id>:<base64>, sealed with its own associated
-- data) plus a keyed HMAC-SM3 blind index (`id_number_idx`, its own domain)
-- for equality search, exactly like the mobile number. Existing members have
-- none, so there is nothing to seal here.
alter table node_members add column id_number_enc text;
alter table node_members add column id_number_idx text;
create index node_members_id_number_idx on node_members(id_number_idx);
