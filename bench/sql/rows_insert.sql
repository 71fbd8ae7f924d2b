-- Inserts rows 1..N into public.bench_rows, 10,000 rows per transaction.
-- N is the session setting cw_bench.rows (SET cw_bench.rows = '1000000'
-- first). One statement, run outside a transaction block: it commits itself.
DO $$
DECLARE
	total bigint := current_setting('cw_bench.rows')::bigint;
	first bigint := 1;
BEGIN
	WHILE first <= total LOOP
		INSERT INTO public.bench_rows (id, name, score, payload, updated_at)
		SELECT i, 'customer ' || i, i * 0.25,
		       jsonb_build_object('sku', 'SKU-' || lpad(i::text, 8, '0'),
		                          'qty', i % 100,
		                          'tags', jsonb_build_array('tier' || (i % 5), 'region-eu'),
		                          'note', 'lorem ipsum dolor sit amet, consectetur adipiscing elit'),
		       now()
		FROM generate_series(first, least(first + 9999, total)) AS i;
		COMMIT;
		first := first + 10000;
	END LOOP;
END
$$;
