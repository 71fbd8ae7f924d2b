/*
 * libFuzzer target for the MongoDB source's readers (capture/mongo_position.h):
 * arbitrary bytes go in as a change event when they frame a BSON document
 * (not validated first: the capture must survive whatever a server sends),
 * and as the JSON text of a stored checkpoint and scan progress (the hub's
 * metadata could hold anything). Each must fail cleanly or give values that
 * round-trip.
 */
#include "capture/mongo_position.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_event(const uint8_t *data, size_t size)
{
	bson_t event;
	if (!bson_init_static(&event, data, size))
		return;
	cw_mongo_event_t read;
	if (cw_mongo_event_read(&event, &read, NULL) != 0)
		return;
	cw_mongo_action_t action = cw_mongo_event_action(&read);
	if (action == CW_MONGO_NEW_GENERATION || action == CW_MONGO_INVALIDATE)
		(void)cw_mongo_end_plan_for(&read, (size & 1) != 0);
	char summary[64];
	cw_mongo_token_summary(read.has_token ? &read.token : NULL, summary, sizeof summary);
	if (read.has_doc_id) {
		bson_t filter = BSON_INITIALIZER;
		cw_mongo_scan_filter(&read.doc_id, &filter);
		bson_destroy(&filter);
	}
}

static void parse_texts(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	cw_mongo_checkpoint_t checkpoint;
	if (cw_mongo_checkpoint_parse(text, &checkpoint, NULL) == 0) {
		char *json = cw_mongo_checkpoint_json(&checkpoint);
		cw_mongo_checkpoint_t again;
		if (cw_mongo_checkpoint_parse(json, &again, NULL) != 0 ||
		    again.generation != checkpoint.generation ||
		    (again.token == NULL) != (checkpoint.token == NULL))
			abort();
		cw_mongo_checkpoint_clear(&again);
		free(json);
		cw_mongo_checkpoint_clear(&checkpoint);
	}
	cw_mongo_scan_progress_t progress;
	if (cw_mongo_scan_progress_parse(text, &progress, NULL) == 0) {
		char *json = cw_mongo_scan_progress_json(&progress);
		cw_mongo_scan_progress_t again;
		if (cw_mongo_scan_progress_parse(json, &again, NULL) != 0 || again.docs != progress.docs ||
		    again.version != progress.version)
			abort();
		cw_mongo_scan_progress_clear(&again);
		free(json);
		cw_mongo_scan_progress_clear(&progress);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_event(data, size);
	parse_texts(data, size);
	return 0;
}
