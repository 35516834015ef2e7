-- A small registry extract for trying the recipe:
--   sqlite3 data/movers.db < data/movers.sql && keyonce run recipe.yaml
CREATE TABLE IF NOT EXISTS movers(cpr TEXT, name TEXT, address TEXT, postcode TEXT, city TEXT,
                                  moved_in TEXT, from_municipality TEXT);
INSERT INTO movers VALUES
  ('010185-1233', 'Søren Ærø', 'Havnegade 4, 2. th.', '5000', 'Odense C', '2026-11-02', '0751'),
  ('2502901234', 'Åse Østergård', 'Skovvej 17', '5230', 'Odense M', '2026-11-03', '0101'),
  ('120372-3457', 'Jens Hansen', 'Vestergade 1', '5000', 'Odense C', '2026-11-05', '0147');
