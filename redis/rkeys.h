/* rkeys.h - the Redis key schema, in one place. Every key is under the
 * configured prefix; `{...}` is the Redis Cluster hash tag, so all keys of one
 * policy domain and day live in one slot (a reporter's MULTI/EXEC or Lua on
 * them works on Cluster too). Days are UTC, written YYYYMMDD.
 *
 *   <p>:rpt:{<domain>}:<day>    HASH  rrow encoding -> count (HINCRBY)
 *   <p>:pol:{<domain>}:<day>    HASH  "policy" -> rrow_policy encoding (HSET, last wins),
 *                                     "first"/"last" -> unix seconds seen (report begin/end)
 *   <p>:idx:<day>               SET   policy domains with data that day
 *   <p>:days                    SET   days with data (for the reporter's listing)
 *   <p>:lock:{<domain>}:<day>   STRING reporter claim (SET NX PX), value = owner token
 *   <p>:sent:{<domain>}:<day>   STRING report id once handed off (idempotency)
 *   <p>:rid:{<domain>}:<day>    STRING report id assigned at first attempt (re-sends reuse it)
 *   <p>:grey:{<triplet-hash>}   greylist state; <p>:awl:{<client-net>} auto-whitelist
 * Every key gets a TTL (counter_retention for counts; the lock its lease).
 * Pure string formatting; no Redis calls here. */
#ifndef PD_RKEYS_H
#define PD_RKEYS_H

#include <stddef.h>

#define RKEY_MAX 600

/* Each writes the key into buf (size sz >= RKEY_MAX) and returns its length
 * (-1 if it did not fit: impossible for validated names and prefixes). '{',
 * '}' and '%' in a domain are written as %7B, %7D, %25 so the hash tag holds. */
int rkey_rpt(char *buf, size_t sz, const char *prefix, const char *domain, const char *day);
int rkey_pol(char *buf, size_t sz, const char *prefix, const char *domain, const char *day);
int rkey_idx(char *buf, size_t sz, const char *prefix, const char *day);
int rkey_days(char *buf, size_t sz, const char *prefix);
int rkey_lock(char *buf, size_t sz, const char *prefix, const char *domain, const char *day);
int rkey_sent(char *buf, size_t sz, const char *prefix, const char *domain, const char *day);
int rkey_rid(char *buf, size_t sz, const char *prefix, const char *domain, const char *day);

/* rkey_day: "YYYYMMDD" (UTC) of unix time t into buf (size >= 9). */
void rkey_day(char *buf, size_t sz, long long t);

#endif
