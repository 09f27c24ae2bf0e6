// The schema of each backend as an ordered list of migrations. Version N's SQL runs once, in
// the transaction that records N in brig_schema_version; a store at version V gets
// migrations V+1.. on open. Never edit a released migration: append a new one.
#ifndef BRIG_STORE_MIGRATIONS_H_
#define BRIG_STORE_MIGRATIONS_H_

#include <span>

namespace brig::store {

struct Migration {
  int version;
  const char* sql;  // one or more statements, no parameters
};

std::span<const Migration> SqliteMigrations();
std::span<const Migration> PostgresMigrations();

}  // namespace brig::store

#endif  // BRIG_STORE_MIGRATIONS_H_
