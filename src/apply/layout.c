/* This file contains the layout rules every target shares (layout.h). */
#include "apply/layout.h"

#include <string.h>

cw_layout_kind_t cw_layout_of(const cw_entity_t *entity)
{
	if (entity->ncolumns > 0)
		return CW_LAYOUT_TYPED;
	return entity->table != NULL ? CW_LAYOUT_DYNAMIC : CW_LAYOUT_DOCUMENT;
}

const char *cw_layout_name(cw_layout_kind_t kind)
{
	switch (kind) {
	case CW_LAYOUT_TYPED: return "typed";
	case CW_LAYOUT_DOCUMENT: return "document";
	case CW_LAYOUT_DYNAMIC: return "dynamic";
	}
	return "unknown";
}

bool cw_layout_key_is_id(const char *key, size_t len)
{
	return len == 2 && memcmp(key, "id", 2) == 0;
}

bool cw_layout_key_is_column(const char *key, size_t len)
{
	char name[CW_ENTITY_NAME_MAX + 1];
	if (len == 0 || len > CW_ENTITY_NAME_MAX || memchr(key, '\0', len) != NULL ||
	    cw_column_name_reserved(key, len))
		return false;
	memcpy(name, key, len);
	name[len] = '\0';
	return cw_identifier_validate("column name", name, NULL) == 0;
}
