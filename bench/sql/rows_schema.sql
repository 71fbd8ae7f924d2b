-- The benchmark table and its publication, shared by bench_pgoutput_reference
-- and bench/peers/run.sh: drops and recreates both (every run starts empty).
-- Rows are ~200 bytes in pgoutput's text form.
SET client_min_messages = warning;
DROP PUBLICATION IF EXISTS cw_bench_pub;
DROP TABLE IF EXISTS public.bench_rows;
CREATE TABLE public.bench_rows (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	score double precision NOT NULL,
	payload jsonb NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE PUBLICATION cw_bench_pub FOR TABLE public.bench_rows;
