/*
 * This file contains the MongoDB source's entry in the source registry
 * (source.h): change streams with an initial scan and resume-token
 * generations. docs/sources-mongodb.md describes it for users.
 */
#ifndef CW_CAPTURE_MONGO_H
#define CW_CAPTURE_MONGO_H

#include "capture/source.h"

extern const cw_source_ops_t cw_mongo_source_ops;

#endif
