-- A reporter's contact (usually a mobile number) is personal data: the
-- `reporter_contact` column holds SM4-GCM ciphertext (v1:<key>:<base64>,
-- sealed by the application), and staff lists show only the masked form
-- kept beside it. Plain text written before this migration is sealed at
-- start (crypto::rotate::seal_pending).
alter table orders add column reporter_contact_masked text;
