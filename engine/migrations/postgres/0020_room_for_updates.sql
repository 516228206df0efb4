-- Hearth engine schema v20 (as SQLite's 0020, where nothing changes): the tables whose rows
-- are rewritten all the time, `sensors` (a sensor's newest reading, `store/latest.rs`) and
-- `agents` (the last contact, every ingest batch), leave half of every page free. An update
-- that finds room on its row's page is heap-only: no new entry in the primary key's index, and
-- the page's dead versions are pruned in place.
--
-- Measured with the ingest benchmark (`cargo xtask bench ingest`, 1,000 sensors / 50 hosts):
-- packed full (the default), 148 of 1,500 updates of `sensors` were heap-only, with half the
-- room 1,731 of 1,750; a slice of 250 sensors' newest readings (`latest::update_pg`) took
-- 2.3-3.6 ms (9-12.6 ms at worst) packed, 1.8-2.7 ms (5.5 ms at worst) with the room. The 50
-- rows of `agents` were all heap-only either way (one page, pruned); a house with hundreds of
-- agents has the same problem as `sensors`. A row per sensor or agent: twice the size is
-- nothing. PostgreSQL does not rewrite a table for it: the room is kept on pages written from
-- now on.
ALTER TABLE sensors SET (fillfactor = 50);
ALTER TABLE agents SET (fillfactor = 50);
