package cachewarp.bench;

import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.connect.source.SourceRecord;

/**
 * The Debezium peer of cachewarp's pgoutput reference (bench/bench_pgoutput_reference.c):
 * Debezium's embedded engine with the PostgreSQL connector streams an existing
 * logical slot (pgoutput, publication cw_bench_pub, table public.bench_rows,
 * offsets in memory, snapshot.mode=no_data) and counts change events
 * until it has seen the expected number. Prints one line:
 *
 *   debezium: events=N seconds=S events_per_s=R startup_s=T peak_rss_kib=K
 *
 * seconds runs from the first change event handed to the consumer to the last
 * one; startup_s from the engine's start to the first event. peak_rss_kib is
 * VmHWM of this JVM. Exits 0 when every expected event arrived, 1 otherwise.
 *
 *   java -jar cw-debezium-bench.jar HOST PORT DBNAME SLOT EVENTS TIMEOUT_S
 */
public final class DebeziumBench {
	private DebeziumBench() {
	}

	/** Counts events; trips the latch at the expected count. Handed batches by the engine. */
	private static final class Counter implements DebeziumEngine.ChangeConsumer<RecordChangeEvent<SourceRecord>> {
		private final long expected;
		private final CountDownLatch done = new CountDownLatch(1);
		private volatile long events;
		private volatile long firstNanos;
		private volatile long lastNanos;

		Counter(long expected) {
			this.expected = expected;
		}

		@Override
		public void handleBatch(List<RecordChangeEvent<SourceRecord>> records,
				DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer)
				throws InterruptedException {
			long now = System.nanoTime();
			long seen = events;
			for (RecordChangeEvent<SourceRecord> record : records) {
				if (record.record().value() != null) {
					if (seen == 0) {
						firstNanos = now;
					}
					seen++;
				}
				committer.markProcessed(record);
			}
			committer.markBatchFinished();
			events = seen;
			lastNanos = System.nanoTime();
			if (seen >= expected) {
				done.countDown();
			}
		}
	}

	private static long peakRssKib() {
		try {
			for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
				if (line.startsWith("VmHWM:")) {
					return Long.parseLong(line.replaceAll("[^0-9]", ""));
				}
			}
		} catch (IOException | NumberFormatException e) {
			System.err.println("debezium bench: could not read /proc/self/status: " + e);
		}
		return -1;
	}

	private static Properties engineProperties(String host, String port, String dbname, String slot) {
		Properties props = new Properties();
		props.setProperty("name", "cw-debezium-bench");
		props.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
		props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
		props.setProperty("offset.flush.interval.ms", "1000");
		props.setProperty("database.hostname", host);
		props.setProperty("database.port", port);
		props.setProperty("database.user", "postgres");
		props.setProperty("database.password", "");
		props.setProperty("database.dbname", dbname);
		props.setProperty("topic.prefix", "cwbench");
		props.setProperty("plugin.name", "pgoutput");
		props.setProperty("slot.name", slot);
		props.setProperty("slot.drop.on.stop", "false");
		props.setProperty("publication.name", "cw_bench_pub");
		props.setProperty("publication.autocreate.mode", "disabled");
		props.setProperty("table.include.list", "public.bench_rows");
		/*
		 * Stream only: no snapshot of data, and for PostgreSQL (no schema
		 * history) none of the schema either, so with no stored offset the
		 * engine streams from the slot's confirmed position, where the rows
		 * written before it started are waiting.
		 */
		props.setProperty("snapshot.mode", "no_data");
		return props;
	}

	public static void main(String[] args) throws Exception {
		if (args.length != 6) {
			System.err.println("usage: java -jar cw-debezium-bench.jar HOST PORT DBNAME SLOT EVENTS TIMEOUT_S");
			System.exit(2);
		}
		long expected = Long.parseLong(args[4]);
		long timeoutSeconds = Long.parseLong(args[5]);
		Counter counter = new Counter(expected);
		ExecutorService executor = Executors.newSingleThreadExecutor();
		long started = System.nanoTime();
		boolean complete;
		try (DebeziumEngine<RecordChangeEvent<SourceRecord>> engine = DebeziumEngine
				.create(ChangeEventFormat.of(Connect.class))
				.using(engineProperties(args[0], args[1], args[2], args[3]))
				.notifying(counter)
				.using((success, message, error) -> {
					if (!success) {
						System.err.println("debezium bench: engine stopped: " + message);
						counter.done.countDown();
					}
				})
				.build()) {
			executor.execute(engine);
			complete = counter.done.await(timeoutSeconds, TimeUnit.SECONDS) && counter.events >= expected;
		}
		executor.shutdown();
		executor.awaitTermination(30, TimeUnit.SECONDS);
		long events = counter.events;
		double seconds = (counter.lastNanos - counter.firstNanos) / 1e9;
		double startup = events > 0 ? (counter.firstNanos - started) / 1e9 : -1;
		System.out.printf("debezium: events=%d seconds=%.3f events_per_s=%.0f startup_s=%.3f peak_rss_kib=%d%n",
				events, seconds, seconds > 0 ? events / seconds : 0.0, startup, peakRssKib());
		if (!complete) {
			System.err.printf("debezium bench: %d of %d events within %d s%n", events, expected, timeoutSeconds);
		}
		System.exit(complete ? 0 : 1);
	}
}
