/*
 * multi_client: an ordinary C++ RAMCloud client (RamCloud.h, linked with
 * libramcloud) running RAMCloud's multi-key operations: multiWrite,
 * multiRemove and multiIncrement of two keys at a time, and reads. It
 * prints one line per key, in history_client.c's format:
 *
 *   <op> <key> <input> 0 <outcome> <value> <version> <start ns> <end ns>
 *
 * op: mwrite | mremove | mincrement | read. Every written value is unique
 * (client id in the high bits).
 *
 * Besides, it increments doubles (incrementDouble by 0.5) on ten keys of
 * its own ("d<client>-<j>"), outside the checked history, and at the end
 * reads each back and prints
 *
 *   double <key> <increments acknowledged> <value read>
 *
 * (the value must be 0.5 times the count).
 *
 * Usage: multi_client <coordinator> <cluster> <table> <hot keys> <client id>
 *                     <stop file> <max operations> <pause us>
 */
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ClientException.h"
#include "RamCloud.h"
#include "test_client.h"

using RAMCloud::Buffer;
using RAMCloud::MultiIncrementObject;
using RAMCloud::MultiRemoveObject;
using RAMCloud::MultiWriteObject;
using RAMCloud::ObjectDoesntExistException;
using RAMCloud::RamCloud;

namespace {

void
line(const char* op, const std::string& key, int64_t input,
     const char* outcome, int64_t value, uint64_t version, int64_t start,
     int64_t end)
{
    printf("%s %s %" PRId64 " 0 %s %" PRId64 " %" PRIu64 " %" PRId64 " %"
           PRId64 "\n", op, key.c_str(), input, outcome, value, version,
           start, end);
}

} // namespace

int
main(int argc, char** argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s <coordinator> <cluster> <table> "
                "<hot keys> <client id> <stop file> <max operations> "
                "<pause us>\n", argv[0]);
        return 2;
    }
    uint64_t hot = strtoull(argv[4], NULL, 0);
    int64_t client = strtoll(argv[5], NULL, 0);
    const char* stopFile = argv[6];
    uint64_t maxOperations = strtoull(argv[7], NULL, 0);
    useconds_t pause = static_cast<useconds_t>(strtoul(argv[8], NULL, 0));
    state = 104729 * static_cast<uint64_t>(client + 1);

    RamCloud ramcloud(argv[1], argv[2]);
    uint64_t table = ramcloud.getTableId(argv[3]);
    int64_t started = now();
    const int doubleKeys = 10;
    uint64_t doubleIncrements[doubleKeys] = {};
    for (uint64_t n = 0; n < maxOperations; n++) {
        if ((n & 15) == 0 && (access(stopFile, F_OK) == 0 ||
                              now() - started > 600000000000ll))
            break;
        std::string keys[2] = {"k" + std::to_string(next() % hot),
                               "k" + std::to_string(next() % hot)};
        if (keys[0] == keys[1])
            continue;
        uint64_t roll = next() % 100;
        int64_t start = now();
        if (roll >= 95) {
            int j = static_cast<int>(next() % doubleKeys);
            std::string key = "d" + std::to_string(client) + "-" +
                    std::to_string(j);
            try {
                ramcloud.incrementDouble(table, key.data(),
                        static_cast<uint16_t>(key.size()), 0.5);
                doubleIncrements[j]++;
            } catch (RAMCloud::ClientException& e) {
                fprintf(stderr, "incrementDouble %s: %s\n", key.c_str(),
                        e.str().c_str());
            }
        } else if (roll < 35) {
            int64_t values[2];
            MultiWriteObject objects[2];
            MultiWriteObject* requests[2];
            for (int i = 0; i < 2; i++) {
                values[i] = (client + 1) << 40 | static_cast<int64_t>(2 * n + i);
                objects[i] = MultiWriteObject(table, keys[i].data(),
                        static_cast<uint16_t>(keys[i].size()), &values[i],
                        sizeof(values[i]));
                requests[i] = &objects[i];
            }
            ramcloud.multiWrite(requests, 2);
            int64_t end = now();
            for (int i = 0; i < 2; i++)
                line("mwrite", keys[i], values[i],
                     objects[i].status == RAMCloud::STATUS_OK ? "written"
                                                              : "failed",
                     objects[i].status, objects[i].version, start, end);
        } else if (roll < 50) {
            MultiRemoveObject objects[2];
            MultiRemoveObject* requests[2];
            for (int i = 0; i < 2; i++) {
                objects[i] = MultiRemoveObject(table, keys[i].data(),
                        static_cast<uint16_t>(keys[i].size()));
                requests[i] = &objects[i];
            }
            ramcloud.multiRemove(requests, 2);
            int64_t end = now();
            for (int i = 0; i < 2; i++)
                line("mremove", keys[i], 0,
                     objects[i].status == RAMCloud::STATUS_OK ? "removed"
                                                              : "failed",
                     objects[i].status, objects[i].version, start, end);
        } else if (roll < 75) {
            MultiIncrementObject objects[2];
            MultiIncrementObject* requests[2];
            for (int i = 0; i < 2; i++) {
                objects[i] = MultiIncrementObject(table, keys[i].data(),
                        static_cast<uint16_t>(keys[i].size()), 1, 0.0);
                requests[i] = &objects[i];
            }
            ramcloud.multiIncrement(requests, 2);
            int64_t end = now();
            for (int i = 0; i < 2; i++) {
                bool ok = objects[i].status == RAMCloud::STATUS_OK;
                line("mincrement", keys[i], 1, ok ? "incremented" : "failed",
                     ok ? objects[i].newValue.asInt64 : objects[i].status,
                     objects[i].version, start, end);
            }
        } else {
            Buffer value;
            uint64_t version = 0;
            const char* outcome = "found";
            int64_t read = 0;
            try {
                ramcloud.read(table, keys[0].data(),
                              static_cast<uint16_t>(keys[0].size()), &value,
                              NULL, &version);
                if (value.size() == sizeof(read))
                    value.copy(0, sizeof(read), &read);
                else
                    read = INT64_MIN;
            } catch (ObjectDoesntExistException&) {
                outcome = "absent";
            } catch (RAMCloud::ClientException& e) {
                outcome = "failed";
                read = e.status;
            }
            line("read", keys[0], 0, outcome, read, version, start, now());
        }
        if (pause > 0)
            usleep(pause);
    }
    for (int j = 0; j < doubleKeys; j++) {
        std::string key = "d" + std::to_string(client) + "-" +
                std::to_string(j);
        double value = 0;
        try {
            Buffer buffer;
            ramcloud.read(table, key.data(), static_cast<uint16_t>(key.size()),
                          &buffer);
            if (buffer.size() == sizeof(value))
                buffer.copy(0, sizeof(value), &value);
        } catch (ObjectDoesntExistException&) {
        }
        printf("double %s %" PRIu64 " %.1f\n", key.c_str(),
               doubleIncrements[j], value);
    }
    fflush(stdout);
    return 0;
}
