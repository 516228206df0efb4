-- What the device key an agent last authenticated with allows: 'sensor', 'relay', 'both', or
-- 'untyped' (a key printed before keys had roles). NULL: not heard from since this migration.
-- The engine commands a relay agent with the engine token of this key (a relay agent holds
-- exactly one key), so a relay agent re-issued a typed key is commanded with it after it
-- registers again; until then NULL means its old, untyped key.
ALTER TABLE agents ADD COLUMN key_role TEXT;
