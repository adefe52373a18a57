/*
 * history_client: an ordinary RAMCloud client, written against CRamCloud.h
 * only, that runs a mixed workload and prints one line per operation:
 *
 *   <op> <key> <input> <given> <outcome> <value> <version> <start ns> <end ns>
 *
 * op: read | mread (one key of an rc_multiRead of two) | write | cwrite
 *     (write rejected unless the version is <given>) | remove | increment;
 *     input: the value written or the delta;
 * outcome: found | absent | written | removed | incremented | rejected |
 *     failed (any other status; <value> is then the status).
 * Times are CLOCK_MONOTONIC. Values are 8-byte integers, and every blind
 * write writes a value no other write uses (client id in the high bits).
 *
 * Usage: history_client <coordinator> <cluster> <table> <keys> <hot keys>
 *                       <client id> <stop file> <max operations>
 *                       <pause us>
 * It pauses <pause us> between operations (a few clients must not starve
 * the servers of a small host), and stops at the stop file, at max
 * operations, or after 600 s.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "CRamCloud.h"
#include "test_client.h"

int
main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: %s <coordinator> <cluster> <table> <keys> "
                "<hot keys> <client id> <stop file> <max operations> "
                "<pause us>\n", argv[0]);
        return 2;
    }
    uint64_t keys = strtoull(argv[4], NULL, 0);
    uint64_t hot = strtoull(argv[5], NULL, 0);
    int64_t client = strtoll(argv[6], NULL, 0);
    const char *stopFile = argv[7];
    uint64_t maxOperations = strtoull(argv[8], NULL, 0);
    useconds_t pause = (useconds_t)strtoul(argv[9], NULL, 0);
    state = 7919 * (uint64_t)(client + 1);

    struct rc_client *rc;
    Status status = rc_connect(argv[1], argv[2], &rc);
    if (status != STATUS_OK) {
        fprintf(stderr, "rc_connect: status %d\n", (int)status);
        return 1;
    }
    uint64_t table;
    status = rc_getTableId(rc, argv[3], &table);
    if (status != STATUS_OK) {
        fprintf(stderr, "rc_getTableId: status %d\n", (int)status);
        return 1;
    }
    /* The last version this client saw per hot key (conditional writes). */
    uint64_t *seen = calloc(hot, sizeof(uint64_t));
    int64_t started = now();
    for (uint64_t n = 0; n < maxOperations; n++) {
        if ((n & 63) == 0 && (access(stopFile, F_OK) == 0 ||
                              now() - started > 600000000000ll))
            break;
        uint64_t index = next() % 100 < 40 ? next() % hot : next() % keys;
        char key[32];
        int keyLength = snprintf(key, sizeof(key), "k%" PRIu64, index);
        uint64_t roll = next() % 100;
        int64_t value = 0, input = 0;
        uint64_t version = 0, given = 0;
        const char *op, *outcome;
        int64_t start = now();
        if (roll < 8) {
            /* rc_multiRead of this key and a hot one: two lines. */
            char key2[32];
            uint64_t index2 = next() % hot;
            int keyLength2 = snprintf(key2, sizeof(key2), "k%" PRIu64,
                                      index2);
            if (index2 == index)
                continue;
            uint16_t size = rc_multiOpSizeOf(MULTI_OP_READ);
            char *objects = malloc(2 * (size_t)size);
            void *requests[2] = {objects, objects + size};
            int64_t values[2] = {0, 0};
            uint32_t lengths[2] = {0, 0};
            rc_multiReadCreate(table, key, (uint16_t)keyLength, &values[0],
                               sizeof(int64_t), &lengths[0], requests[0]);
            rc_multiReadCreate(table, key2, (uint16_t)keyLength2, &values[1],
                               sizeof(int64_t), &lengths[1], requests[1]);
            rc_multiRead(rc, requests, 2);
            int64_t end = now();
            const char *keys2[2] = {key, key2};
            for (int i = 0; i < 2; i++) {
                Status s = rc_multiOpStatus(requests[i], MULTI_OP_READ);
                uint64_t v = rc_multiOpVersion(requests[i], MULTI_OP_READ);
                const char *o = s == STATUS_OK ? "found"
                        : s == STATUS_OBJECT_DOESNT_EXIST ? "absent" : "failed";
                int64_t value2 = s == STATUS_OK ? (lengths[i] == sizeof(int64_t)
                        ? values[i] : INT64_MIN) : s == STATUS_OBJECT_DOESNT_EXIST
                        ? 0 : (int64_t)s;
                printf("mread %s 0 0 %s %" PRId64 " %" PRIu64 " %" PRId64
                       " %" PRId64 "\n", keys2[i], o, value2, v, start, end);
                rc_multiOpDestroy(requests[i], MULTI_OP_READ);
            }
            free(objects);
            if (pause > 0)
                usleep(pause);
            continue;
        } else if (roll < 45) {
            op = "read";
            uint32_t length = 0;
            status = rc_read(rc, table, key, (uint16_t)keyLength, NULL,
                             &version, &value, sizeof(value), &length);
            outcome = status == STATUS_OK ? "found"
                    : status == STATUS_OBJECT_DOESNT_EXIST ? "absent" : NULL;
            if (status == STATUS_OK && length != sizeof(value))
                value = INT64_MIN;
            if (status == STATUS_OK && index < hot)
                seen[index] = version;
        } else if (roll < 65) {
            op = "write";
            input = (client + 1) << 40 | (int64_t)n;
            status = rc_write(rc, table, key, (uint16_t)keyLength, &input,
                              sizeof(input), NULL, &version);
            outcome = status == STATUS_OK ? "written" : NULL;
        } else if (roll < 75 && index < hot && seen[index] != 0) {
            op = "cwrite";
            input = (client + 1) << 40 | (int64_t)n;
            given = seen[index];
            struct RejectRules rules;
            memset(&rules, 0, sizeof(rules));
            rules.givenVersion = given;
            rules.doesntExist = 1;
            rules.versionNeGiven = 1;
            status = rc_write(rc, table, key, (uint16_t)keyLength, &input,
                              sizeof(input), &rules, &version);
            outcome = status == STATUS_OK ? "written"
                    : status == STATUS_WRONG_VERSION ||
                      status == STATUS_OBJECT_DOESNT_EXIST ? "rejected" : NULL;
            if (outcome != NULL && status != STATUS_OK)
                value = status;
        } else if (roll < 85) {
            op = "remove";
            status = rc_remove(rc, table, key, (uint16_t)keyLength, NULL,
                               &version);
            outcome = status == STATUS_OK ? "removed" : NULL;
        } else {
            op = "increment";
            input = 1;
            status = rc_incrementInt64(rc, table, key, (uint16_t)keyLength,
                                       input, NULL, &version, &value);
            outcome = status == STATUS_OK ? "incremented" : NULL;
        }
        int64_t end = now();
        if (outcome == NULL) {
            outcome = "failed";
            value = status;
        }
        printf("%s %s %" PRId64 " %" PRIu64 " %s %" PRId64 " %" PRIu64
               " %" PRId64 " %" PRId64 "\n", op, key, input, given, outcome,
               value, version, start, end);
        if (pause > 0)
            usleep(pause);
    }
    fflush(stdout);
    rc_disconnect(rc);
    free(seen);
    return 0;
}
