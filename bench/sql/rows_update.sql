-- Updates rows 1..N of public.bench_rows (written by rows_insert.sql), 10,000
-- rows per transaction in id order: new score and updated_at, the other
-- columns unchanged (pgoutput still sends the whole new row). N is the
-- session setting cw_bench.rows. One statement, run outside a transaction
-- block: it commits itself.
DO $$
DECLARE
	total bigint := current_setting('cw_bench.rows')::bigint;
	first bigint := 1;
BEGIN
	WHILE first <= total LOOP
		UPDATE public.bench_rows
		SET score = score + 1, updated_at = now()
		WHERE id BETWEEN first AND least(first + 9999, total);
		COMMIT;
		first := first + 10000;
	END LOOP;
END
$$;
