/* test_inst.c - the per-message table with an injected clock: put/get,
 * replacement, expiry at exactly the timeout, eviction of the oldest,
 * shrinking limits, counters, and every removal freeing its data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inst.h"
#include "tap.h"

static long freed; /* how many data items the table handed back */
static long live;  /* allocated minus freed */

static void *mk(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    live++;
    return p;
}

static void fr(void *p)
{
    freed++;
    live--;
    free(p);
}

static int val(void *p)
{
    return p ? *(int *)p : -1;
}

int main(void)
{
    struct inst_table *t = inst_new(3, 1000, fr);
    char key[32];
    long f0;

    ok(t != NULL, "new");
    is_int((long long)inst_count(t), 0, "empty");
    ok(inst_get(t, "A1", 0) == NULL, "absent key");

    /* put / get; keys are copied */
    strcpy(key, "A1");
    is_int(inst_put(t, key, mk(1), 100), 0, "put A1");
    strcpy(key, "XX"); /* the caller's buffer changes: the table kept its own copy */
    is_int(val(inst_get(t, "A1", 100)), 1, "get A1");
    ok(inst_get(t, "XX", 100) == NULL, "key copied, not borrowed");
    is_int((long long)inst_count(t), 1, "count 1");

    /* replace frees the old value */
    f0 = freed;
    is_int(inst_put(t, "A1", mk(2), 200), 0, "replace A1");
    is_int(freed - f0, 1, "old value freed on replace");
    is_int(val(inst_get(t, "A1", 200)), 2, "new value");
    is_int((long long)inst_count(t), 1, "replace keeps count");

    /* expiry at exactly the timeout, counted from the last put (200) */
    is_int(val(inst_get(t, "A1", 1199)), 2, "alive 1 ms before the timeout");
    f0 = freed;
    ok(inst_get(t, "A1", 1200) == NULL, "gone at exactly the timeout");
    is_int(freed - f0, 1, "expired entry freed on get");
    is_int((long long)inst_count(t), 0, "expired entry removed");

    /* eviction of the oldest when full */
    inst_put(t, "m1", mk(11), 2000);
    inst_put(t, "m2", mk(12), 2001);
    inst_put(t, "m3", mk(13), 2002);
    is_int((long long)inst_evictions(t), 0, "no eviction yet");
    f0 = freed;
    inst_put(t, "m4", mk(14), 2003);
    is_int((long long)inst_count(t), 3, "still at max");
    is_int((long long)inst_evictions(t), 1, "one eviction");
    is_int(freed - f0, 1, "evicted value freed");
    ok(inst_get(t, "m1", 2003) == NULL, "oldest (m1) evicted");
    is_int(val(inst_get(t, "m2", 2003)), 12, "m2 kept");
    /* a replace makes an entry the newest: m2 now outlives m3 */
    inst_put(t, "m2", mk(22), 2004);
    inst_put(t, "m5", mk(15), 2005);
    ok(inst_get(t, "m3", 2005) == NULL, "m3 evicted (m2 was refreshed by its replace)");
    is_int(val(inst_get(t, "m2", 2005)), 22, "m2 kept");
    is_int((long long)inst_evictions(t), 2, "two evictions");

    /* inst_expire: oldest first, exactly at the timeout */
    /* stamps now: m4 2003, m2 2004, m5 2005 */
    is_int((long long)inst_expire(t, 3002), 0, "nothing expired at 3002");
    is_int((long long)inst_expire(t, 3003), 1, "m4 expired at 3003");
    is_int((long long)inst_expire(t, 3005), 2, "m2, m5 expired at 3005");
    is_int((long long)inst_count(t), 0, "empty after expiry");
    is_int((long long)inst_evictions(t), 2, "expiry is not eviction");
    is_int((long long)inst_expire(t, 99999), 0, "expire on empty");

    /* a clock that goes backwards expires nothing */
    inst_put(t, "b1", mk(31), 5000);
    is_int(val(inst_get(t, "b1", 4000)), 31, "earlier clock: still there");
    is_int((long long)inst_expire(t, 4000), 0, "earlier clock: nothing expired");

    /* del frees; del of an absent key is harmless */
    f0 = freed;
    inst_del(t, "b1");
    is_int(freed - f0, 1, "del frees");
    inst_del(t, "b1");
    is_int((long long)inst_count(t), 0, "del removes");

    /* set_limits: shrinking evicts the oldest; the new timeout applies */
    inst_set_limits(t, 5, 1000);
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "s%d", i);
        inst_put(t, key, mk(40 + i), 6000 + (uint64_t)i);
    }
    is_int((long long)inst_count(t), 5, "grown to 5");
    f0 = freed;
    inst_set_limits(t, 2, 50);
    is_int((long long)inst_count(t), 2, "shrunk to 2");
    is_int(freed - f0, 3, "three freed on shrink");
    ok(inst_get(t, "s2", 6004) == NULL && inst_get(t, "s3", 6004) != NULL &&
           inst_get(t, "s4", 6004) != NULL,
       "the two newest survive the shrink");
    ok(inst_get(t, "s3", 6053) == NULL, "new timeout (50 ms) applies");
    inst_set_limits(t, 0, 50); /* 0 is taken as 1 */
    is_int((long long)inst_count(t), 1, "max 0 taken as 1");

    /* NULL data is allowed and not passed to free_data */
    inst_put(t, "nul", NULL, 7000);
    ok(inst_get(t, "nul", 7000) == NULL, "NULL data stored");
    is_int((long long)inst_count(t), 1, "NULL data counted");

    /* re-putting the same pointer does not free it */
    {
        void *same = mk(77);
        inst_put(t, "same", same, 7001);
        f0 = freed;
        inst_put(t, "same", same, 7002);
        is_int(freed - f0, 0, "same pointer re-put is not freed");
        is_int(val(inst_get(t, "same", 7002)), 77, "same pointer still there");
    }

    inst_free(&t);
    ok(t == NULL, "free NULLs the pointer");
    inst_free(&t);
    is_int(live, 0, "every value freed");

    /* 100k inserts through a 10k table: fast, bounded, nothing leaks. */
    {
        clock_t t0 = clock();
        int found = 0;
        t = inst_new(10000, 60000, fr);
        for (int i = 0; i < 100000; i++) {
            snprintf(key, sizeof key, "%d.%d.inst", i, i * 7);
            if (inst_put(t, key, mk(i), (uint64_t)i) != 0)
                break;
        }
        is_int((long long)inst_count(t), 10000, "bounded at 10000");
        is_int((long long)inst_evictions(t), 90000, "90000 evictions");
        for (int i = 90000; i < 100000; i++) {
            snprintf(key, sizeof key, "%d.%d.inst", i, i * 7);
            found += val(inst_get(t, key, 100000)) == i;
        }
        is_int(found, 10000, "the newest 10000 all found");
        snprintf(key, sizeof key, "%d.%d.inst", 89999, 89999 * 7);
        ok(inst_get(t, key, 100000) == NULL, "the 10001st newest evicted");
        is_int((long long)inst_expire(t, 60000 + 95000), 5001, "expire drops the old half");
        inst_free(&t);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        /* natively ~15 ms; the bound leaves room for valgrind/sanitizers and
         * still catches a scan per insert (10k x 100k = 1e9 steps). */
        ok(secs < 5.0, "100k inserts in %.3f s", secs);
        is_int(live, 0, "no value leaked");
    }
    return tap_done();
}
