/*
 * whole_tablet_client: an ordinary C++ RAMCloud client (RamCloud.h,
 * TableEnumerator.h, IndexLookup.h, linked with libramcloud) that reads
 * whole tables: enumeration and secondary-index range lookups.
 *
 * fill: creates the table with secondary index 1 and writes <objects>
 * objects: primary key "p<i>", secondary key "s<i, 8 digits>", value i.
 *
 * run: rounds until the stop file appears. Each round writes one new
 * object ("n<client>-<seq>", secondary key "t<client>-<seq>"), then
 * enumerates the table and looks up the index range ["s", "u"), and
 * checks that each saw every filled object exactly once and exactly the
 * new objects this client had written before the round. One line per
 * check:
 *
 *   <enumerate|index> <filled seen> <filled> <own seen> <own written>
 *       <ok|incomplete|failed:<status>> <start ns> <end ns>
 *
 * Usage: whole_tablet_client <coordinator> <cluster> fill <table> <objects>
 *        whole_tablet_client <coordinator> <cluster> run <table> <objects>
 *                            <client id> <stop file> <max rounds>
 */
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "ClientException.h"
#include "IndexLookup.h"
#include "Object.h"
#include "RamCloud.h"
#include "test_client.h"
#include "TableEnumerator.h"

using RAMCloud::Buffer;
using RAMCloud::IndexKey;
using RAMCloud::IndexLookup;
using RAMCloud::KeyInfo;
using RAMCloud::MultiWriteObject;
using RAMCloud::Object;
using RAMCloud::RamCloud;
using RAMCloud::TableEnumerator;

namespace {

std::string
secondaryKey(uint64_t i)
{
    char key[32];
    snprintf(key, sizeof(key), "s%08" PRIu64, i);
    return key;
}

/// What one whole-table read saw: filled keys (each counted once, a
/// duplicate makes the count wrong) and this client's new keys.
struct Seen {
    std::unordered_set<std::string> filled;
    uint64_t filledLines = 0;
    std::unordered_set<std::string> own;
    uint64_t ownLines = 0;

    void add(const std::string& key, const std::string& ownPrefix)
    {
        if (key[0] == 'p') {
            filled.insert(key);
            filledLines++;
        } else if (key.compare(0, ownPrefix.size(), ownPrefix) == 0) {
            own.insert(key);
            ownLines++;
        }
    }
};

void
report(const char* what, const Seen& seen, uint64_t filled, uint64_t written,
       const std::string& failure, int64_t start)
{
    bool complete = seen.filled.size() == filled &&
            seen.filledLines == filled && seen.own.size() == written &&
            seen.ownLines == written;
    printf("%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %" PRId64
           " %" PRId64 "\n", what, seen.filledLines, filled, seen.ownLines,
           written, !failure.empty() ? failure.c_str()
                                     : complete ? "ok" : "incomplete",
           start, now());
    fflush(stdout);
}

int
fill(RamCloud& ramcloud, const char* name, uint64_t objects)
{
    uint64_t table = ramcloud.createTable(name);
    ramcloud.createIndex(table, 1, 0, 1);
    const uint64_t batch = 100;
    for (uint64_t first = 0; first < objects; first += batch) {
        uint64_t count = std::min(batch, objects - first);
        std::vector<std::string> primary(count), secondary(count);
        std::vector<int64_t> values(count);
        std::vector<KeyInfo> keys(2 * count);
        std::vector<MultiWriteObject> writes(count);
        std::vector<MultiWriteObject*> requests(count);
        for (uint64_t j = 0; j < count; j++) {
            primary[j] = "p" + std::to_string(first + j);
            secondary[j] = secondaryKey(first + j);
            values[j] = static_cast<int64_t>(first + j);
            keys[2 * j] = {primary[j].data(),
                           static_cast<uint16_t>(primary[j].size())};
            keys[2 * j + 1] = {secondary[j].data(),
                               static_cast<uint16_t>(secondary[j].size())};
            writes[j] = MultiWriteObject(table, &values[j], sizeof(values[j]),
                                         2, &keys[2 * j]);
            requests[j] = &writes[j];
        }
        ramcloud.multiWrite(requests.data(), static_cast<uint32_t>(count));
        for (uint64_t j = 0; j < count; j++) {
            if (writes[j].status != RAMCloud::STATUS_OK) {
                fprintf(stderr, "fill: %s: %s\n", primary[j].c_str(),
                        RAMCloud::statusToString(writes[j].status));
                return 1;
            }
        }
    }
    printf("filled %" PRIu64 "\n", objects);
    return 0;
}

} // namespace

int
main(int argc, char** argv)
{
    bool fillMode = argc == 6 && strcmp(argv[3], "fill") == 0;
    bool runMode = argc == 9 && strcmp(argv[3], "run") == 0;
    if (!fillMode && !runMode) {
        fprintf(stderr, "usage: %s <coordinator> <cluster> fill <table> "
                "<objects>\n       %s <coordinator> <cluster> run <table> "
                "<objects> <client id> <stop file> <max rounds>\n",
                argv[0], argv[0]);
        return 2;
    }
    RamCloud ramcloud(argv[1], argv[2]);
    uint64_t objects = strtoull(argv[5], NULL, 0);
    if (fillMode)
        return fill(ramcloud, argv[4], objects);

    int64_t client = strtoll(argv[6], NULL, 0);
    const char* stopFile = argv[7];
    uint64_t maxRounds = strtoull(argv[8], NULL, 0);
    uint64_t table = ramcloud.getTableId(argv[4]);
    std::string ownPrefix = "n" + std::to_string(client) + "-";
    uint64_t written = 0;
    int64_t started = now();
    for (uint64_t round = 0; round < maxRounds; round++) {
        if (access(stopFile, F_OK) == 0 || now() - started > 600000000000ll)
            break;
        // One new object, written (at the tablet's current owner) before
        // this round's reads start.
        std::string primary = ownPrefix + std::to_string(round);
        std::string secondary = "t" + std::to_string(client) + "-" +
                std::to_string(round);
        KeyInfo keys[2] = {
            {primary.data(), static_cast<uint16_t>(primary.size())},
            {secondary.data(), static_cast<uint16_t>(secondary.size())}};
        int64_t value = static_cast<int64_t>(round);
        try {
            ramcloud.write(table, 2, keys, &value, sizeof(value));
            written++;
        } catch (RAMCloud::ClientException& e) {
            fprintf(stderr, "write %s: %s\n", primary.c_str(), e.str().c_str());
            return 1;
        }

        Seen enumerated;
        std::string failure;
        int64_t start = now();
        try {
            TableEnumerator enumerator(ramcloud, table, true);
            while (enumerator.hasNext()) {
                uint32_t keyLength = 0, dataLength = 0;
                const void* key = NULL;
                const void* data = NULL;
                enumerator.nextKeyAndData(&keyLength, &key, &dataLength,
                                          &data);
                enumerated.add(std::string(static_cast<const char*>(key),
                                           keyLength), ownPrefix);
            }
        } catch (RAMCloud::ClientException& e) {
            failure = "failed:" + std::to_string(e.status);
        }
        report("enumerate", enumerated, objects, written, failure, start);

        Seen indexed;
        failure.clear();
        start = now();
        try {
            IndexKey::IndexKeyRange range(1, "s", 1, "u", 1,
                    IndexKey::IndexKeyRange::EXCLUDE_LAST);
            IndexLookup lookup(&ramcloud, table, range);
            while (lookup.getNext()) {
                Object* object = lookup.currentObject();
                uint16_t keyLength = 0;
                const void* key = object->getKey(0, &keyLength);
                indexed.add(std::string(static_cast<const char*>(key),
                                        keyLength), ownPrefix);
            }
        } catch (RAMCloud::ClientException& e) {
            failure = "failed:" + std::to_string(e.status);
        }
        report("index", indexed, objects, written, failure, start);
    }
    return 0;
}
