/* Copyright (c) 2026 Fulva authors.
 *
 * A small C++ host that loads the Fulva plugin through fulva.h only, the
 * way a RAMCloud master does, and drives it against a simulated source;
 * then checks the C++ per-request rules (FulvaRules.h) against the shared
 * cases in rules.txt. Prints one line per check ("ok ..." or "FAIL ...")
 * and exits 0 only if every check passed.
 *
 * Usage: abi_host <libFulvaPlugin.so> <rules.txt>
 */
#include <dlfcn.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "FulvaRules.h"
#include "fulva.h"

namespace {

int failures = 0;

void
check(bool ok, const char* format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    printf("%s %s\n", ok ? "ok" : "FAIL", text);
    if (!ok)
        failures++;
}

/// The plugin's exports, resolved by name.
struct Plugin {
    uint32_t (*abiVersion)(void);
    int (*start)(const fulva_host_ops*, void**, char*, size_t);
    int (*migrate)(void*, const fulva_migration_request*, char*, size_t);
    int (*drive)(void*, uint64_t);
    int (*status)(void*, uint64_t, fulva_migration_status*);
    int (*sourcePrepare)(void*, const fulva_migration_request*, uint64_t,
                         uint64_t, uint64_t, uint64_t*, char*, size_t);
    int (*sourceEnd)(void*, uint64_t);
    void (*stop)(void*);
};

template<typename T>
bool
resolve(void* library, const char* name, T* slot)
{
    *slot = reinterpret_cast<T>(dlsym(library, name));
    check(*slot != NULL, "the plugin exports %s", name);
    return *slot != NULL;
}

/**
 * A simulated master hosting the destination side, with a simulated
 * source behind its operations. It records what the plugin asks for and
 * checks the protocol's order: prepare, then ownership, then pulls whose
 * batches tile every partition, watermarks that only grow and only over
 * replayed batches, then finish.
 */
struct FakeHost {
    uint64_t bucketCount = 4096;
    uint64_t bound = 777;
    bool failPulls = false;

    bool prepared = false;
    bool owned = false;
    bool finished = false;
    bool abandoned = false;
    uint32_t partitions = 0;
    std::vector<uint64_t> watermarks;
    /// Buckets replayed, per partition: [first, end) ranges.
    std::map<uint32_t, std::set<std::pair<uint64_t, uint64_t>>> replayed;
    int pullCalls = 0;
    int orderErrors = 0;
    int watermarkErrors = 0;
    uint64_t objects = 0;

    fulva_host_ops ops() {
        fulva_host_ops o;
        memset(&o, 0, sizeof(o));
        o.structSize = sizeof(fulva_host_ops);
        o.abiVersion = FULVA_ABI_VERSION;
        o.context = this;
        o.serverId = 2;
        o.log = [](void*, int level, const char* message) {
            printf("   plugin log [%d]: %s\n", level, message);
        };
        o.prepare_source = [](void* c, const fulva_migration_request* r,
                              fulva_prepare_reply* reply, char*, size_t) {
            FakeHost* h = static_cast<FakeHost*>(c);
            if (h->owned || h->prepared)
                h->orderErrors++;
            h->prepared = true;
            h->partitions = r->partitions;
            reply->versionBound = h->bound;
            reply->bucketCount = h->bucketCount;
            reply->partitions = r->partitions;
            reply->completionRecords = 3;
            return static_cast<int>(FULVA_OK);
        };
        o.take_ownership = [](void* c, const fulva_migration_request*,
                              const fulva_prepare_reply* p, char*, size_t) {
            FakeHost* h = static_cast<FakeHost*>(c);
            if (!h->prepared || h->owned)
                h->orderErrors++;
            h->owned = true;
            h->partitions = p->partitions;
            Fulva::Layout layout{h->bucketCount, h->partitions};
            for (uint32_t i = 0; i < h->partitions; i++)
                h->watermarks.push_back(layout.firstBucket(i));
            return static_cast<int>(FULVA_OK);
        };
        o.pull = [](void* c, const fulva_migration_request*,
                    const fulva_pull_request* pulls, size_t count,
                    fulva_pull_reply* replies) {
            FakeHost* h = static_cast<FakeHost*>(c);
            h->pullCalls++;
            if (!h->owned || h->finished)
                h->orderErrors++;
            for (size_t i = 0; i < count; i++) {
                replies[i].status = h->failPulls ? 1001 : FULVA_OK;
                if (h->failPulls)
                    continue;
                // Cut every other batch short, as a source out of budget.
                uint64_t span = pulls[i].endBucket - pulls[i].firstBucket;
                uint64_t end = (span > 1 && (h->pullCalls % 2) == 0)
                        ? pulls[i].firstBucket + span / 2 : pulls[i].endBucket;
                replies[i].objects = static_cast<uint32_t>(end -
                        pulls[i].firstBucket);
                replies[i].bytes = replies[i].objects * 100;
                replies[i].resumeBucket = end;
                h->objects += replies[i].objects;
                h->replayed[pulls[i].partition].insert(
                        {pulls[i].firstBucket, end});
            }
            return static_cast<int>(FULVA_OK);
        };
        o.publish_watermark = [](void* c, uint64_t, uint32_t partition,
                                 uint64_t bucket) {
            FakeHost* h = static_cast<FakeHost*>(c);
            if (partition >= h->watermarks.size() ||
                    bucket <= h->watermarks[partition]) {
                h->watermarkErrors++;
                return static_cast<int>(FULVA_ERROR_INVALID_ARGUMENT);
            }
            // The watermark may only cover buckets already replayed.
            uint64_t reached = h->watermarks[partition];
            bool progress = true;
            while (progress && reached < bucket) {
                progress = false;
                for (auto& range : h->replayed[partition]) {
                    if (range.first <= reached && range.second > reached) {
                        reached = range.second;
                        progress = true;
                    }
                }
            }
            if (reached < bucket)
                h->watermarkErrors++;
            h->watermarks[partition] = bucket;
            return static_cast<int>(FULVA_OK);
        };
        o.finish = [](void* c, const fulva_migration_request*, char*, size_t) {
            FakeHost* h = static_cast<FakeHost*>(c);
            Fulva::Layout layout{h->bucketCount, h->partitions};
            for (uint32_t i = 0; i < h->partitions; i++) {
                uint64_t end = i + 1 < h->partitions ?
                        layout.firstBucket(i + 1) : h->bucketCount;
                if (h->watermarks[i] != end)
                    h->orderErrors++;
            }
            h->finished = true;
            return static_cast<int>(FULVA_OK);
        };
        o.abandon = [](void* c, const fulva_migration_request*, char*, size_t) {
            static_cast<FakeHost*>(c)->abandoned = true;
            return static_cast<int>(FULVA_OK);
        };
        return o;
    }
};

fulva_migration_request
request(uint64_t id, uint64_t source, uint64_t destination, uint64_t first,
        uint64_t last, uint32_t partitions)
{
    fulva_migration_request r;
    memset(&r, 0, sizeof(r));
    r.migrationId = id;
    r.tablet.tableId = 7;
    r.tablet.firstKeyHash = first;
    r.tablet.lastKeyHash = last;
    r.source = source;
    r.destination = destination;
    r.strategy = FULVA_STRATEGY_FULVA;
    r.partitions = partitions;
    return r;
}

void
drivePlugin(const Plugin& plugin)
{
    char error[256];
    void* handle = NULL;

    // A host of another ABI version is refused, with the reason.
    FakeHost stale;
    fulva_host_ops staleOps = stale.ops();
    staleOps.abiVersion = FULVA_ABI_VERSION - 1;
    int status = plugin.start(&staleOps, &handle, error, sizeof(error));
    check(status == FULVA_ERROR_ABI_MISMATCH && strlen(error) > 0,
          "a host of ABI version %u is refused (%d: %s)",
          FULVA_ABI_VERSION - 1, status, error);
    staleOps = stale.ops();
    staleOps.structSize -= 8;
    status = plugin.start(&staleOps, &handle, error, sizeof(error));
    check(status == FULVA_ERROR_ABI_MISMATCH,
          "a host with a shorter operations table is refused (%d)", status);
    staleOps = stale.ops();
    staleOps.pull = NULL;
    status = plugin.start(&staleOps, &handle, error, sizeof(error));
    check(status == FULVA_ERROR_INVALID_ARGUMENT,
          "a host with an empty operation is refused (%d)", status);

    FakeHost host;
    fulva_host_ops ops = host.ops();
    status = plugin.start(&ops, &handle, error, sizeof(error));
    check(status == FULVA_OK && handle != NULL, "start (%d %s)", status,
          error);
    if (handle == NULL)
        return;

    // Bad requests are refused with a reason, and change nothing.
    fulva_migration_request same = request(10, 2, 2, 0, ~0UL, 4);
    status = plugin.migrate(handle, &same, error, sizeof(error));
    check(status == FULVA_ERROR_REFUSED, "same source and destination "
          "refused (%d: %s)", status, error);
    fulva_migration_request inverted = request(11, 1, 2, 100, 5, 4);
    status = plugin.migrate(handle, &inverted, error, sizeof(error));
    check(status == FULVA_ERROR_REFUSED, "inverted key-hash range refused "
          "(%d: %s)", status, error);
    fulva_migration_request elsewhere = request(12, 1, 3, 0, ~0UL, 4);
    status = plugin.migrate(handle, &elsewhere, error, sizeof(error));
    check(status == FULVA_ERROR_REFUSED, "a migration to another server "
          "refused (%d: %s)", status, error);
    fulva_migration_status s;
    check(plugin.status(handle, 10, &s) == FULVA_ERROR_UNKNOWN_MIGRATION,
          "a refused migration leaves no record");

    // A migration runs to its end through the host's operations.
    fulva_migration_request good = request(20, 1, 2, 0, ~0UL, 6);
    status = plugin.migrate(handle, &good, error, sizeof(error));
    check(status == FULVA_OK, "migration accepted (%d %s)", status, error);
    fulva_migration_request overlapping = request(21, 1, 2, 5, 6, 6);
    status = plugin.migrate(handle, &overlapping, error, sizeof(error));
    check(status == FULVA_ERROR_REFUSED, "a second migration over a busy "
          "tablet refused (%d: %s)", status, error);
    check(plugin.status(handle, 20, &s) == FULVA_OK &&
          s.phase == FULVA_PHASE_PREPARING, "status before drive: preparing");
    status = plugin.drive(handle, 20);
    check(status == FULVA_OK, "drive returns OK (%d)", status);
    check(host.prepared && host.owned && host.finished && !host.abandoned,
          "prepare, ownership and finish happened");
    check(host.orderErrors == 0, "operations came in protocol order "
          "(%d errors)", host.orderErrors);
    check(host.watermarkErrors == 0, "watermarks only grew, and only over "
          "replayed buckets (%d errors)", host.watermarkErrors);
    check(host.partitions == 6, "the requested partitions were used (%u)",
          host.partitions);
    check(host.objects == host.bucketCount, "every bucket was pulled once "
          "(%" PRIu64 " of %" PRIu64 ")", host.objects, host.bucketCount);
    status = plugin.status(handle, 20, &s);
    check(status == FULVA_OK && s.phase == FULVA_PHASE_DONE &&
          s.versionBound == host.bound && s.bucketCount == host.bucketCount &&
          s.bucketsReplayed == host.bucketCount &&
          s.objectsMoved == host.objects && s.bytesMoved == host.objects * 100
          && s.endMicros >= s.startMicros && s.endMicros > 0,
          "status after drive: done, bound %" PRIu64 ", %" PRIu64
          " buckets, %" PRIu64 " objects", s.versionBound, s.bucketsReplayed,
          s.objectsMoved);

    // The tablet is free again: a migration back is accepted. A source that
    // never answers a pull makes it fail, the host undoes it, and the
    // status says why.
    host.failPulls = true;
    host.prepared = host.owned = host.finished = false;
    host.watermarks.clear();
    fulva_migration_request failing = request(30, 1, 2, 5, 6, 2);
    status = plugin.migrate(handle, &failing, error, sizeof(error));
    check(status == FULVA_OK, "a new migration over the same tablet "
          "accepted once the first ended (%d %s)", status, error);
    status = plugin.drive(handle, 30);
    check(status != FULVA_OK, "drive of a migration whose pulls fail "
          "returns an error (%d)", status);
    check(host.abandoned, "the host was asked to undo the failed migration");
    status = plugin.status(handle, 30, &s);
    check(status == FULVA_OK && s.phase == FULVA_PHASE_FAILED &&
          strlen(s.lastError) > 0, "status says FAILED with a reason (%s)",
          s.lastError);

    // Source side: the bound comes from FulvaCore's rule.
    uint64_t bound = 0;
    fulva_migration_request atSource = request(40, 2, 1, 0, 1000, 4);
    status = plugin.sourcePrepare(handle, &atSource, 1024, 10, 41, &bound,
                                  error, sizeof(error));
    check(status == FULVA_OK && bound == Fulva::versionBound(10, 41),
          "source bound %" PRIu64 " == max(safeVersion, highest + 1)", bound);
    fulva_migration_request overlapAtSource = request(41, 2, 1, 500, 2000, 4);
    status = plugin.sourcePrepare(handle, &overlapAtSource, 1024, 10, 41,
                                  &bound, error, sizeof(error));
    check(status == FULVA_ERROR_REFUSED, "the source refuses a second "
          "migration over a frozen tablet (%d: %s)", status, error);
    check(plugin.sourceEnd(handle, 40) == FULVA_OK, "source end");
    status = plugin.sourcePrepare(handle, &overlapAtSource, 1024, 10, 41,
                                  &bound, error, sizeof(error));
    check(status == FULVA_OK, "after the end it is accepted (%d)", status);
    plugin.stop(handle);
}

// MARK: shared rule cases

Fulva::Entry
entry(const std::string& word)
{
    if (word == "object")
        return Fulva::Entry::OBJECT;
    if (word == "tombstone")
        return Fulva::Entry::TOMBSTONE;
    return Fulva::Entry::NONE;
}

std::string
answerName(Fulva::ReadAnswer a)
{
    switch (a) {
    case Fulva::ReadAnswer::OBJECT: return "object";
    case Fulva::ReadAnswer::TOMBSTONE: return "tombstone";
    case Fulva::ReadAnswer::ABSENT: return "absent";
    case Fulva::ReadAnswer::NOT_YET_MOVED_OVER_OBJECT:
        return "notYetMovedOverObject";
    case Fulva::ReadAnswer::NOT_YET_MOVED_OVER_ABSENT:
        return "notYetMovedOverAbsent";
    default: return "notYetMoved";
    }
}

std::string
admissionName(Fulva::Admission a)
{
    switch (a) {
    case Fulva::Admission::EXECUTE: return "execute";
    case Fulva::Admission::PRIORITY_FETCH_FIRST: return "priorityFetchFirst";
    case Fulva::Admission::RETRY_AFTER_PRIORITY_FETCH:
        return "retryAfterPriorityFetch";
    case Fulva::Admission::REFUSE: return "refuse";
    default: return "retryLater";
    }
}

uint64_t
number(const std::string& word)
{
    return strtoull(word.c_str(), NULL, 0);
}

/// A comma-separated list of numbers; "-" is the empty list.
std::vector<uint64_t>
numbers(const std::string& word)
{
    std::vector<uint64_t> list;
    if (word == "-")
        return list;
    std::istringstream items(word);
    std::string item;
    while (std::getline(items, item, ','))
        list.push_back(number(item));
    return list;
}

void
checkRules(const char* path)
{
    std::ifstream file(path);
    check(file.good(), "rules file %s opens", path);
    std::string line;
    int cases = 0;
    while (std::getline(file, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream words(line);
        std::vector<std::string> w;
        std::string word;
        while (words >> word)
            w.push_back(word);
        size_t arrow = 0;
        while (arrow < w.size() && w[arrow] != "->")
            arrow++;
        if (arrow + 1 >= w.size()) {
            check(false, "malformed case: %s", line.c_str());
            continue;
        }
        const std::string& want = w[arrow + 1];
        std::string got;
        const std::string& rule = w[0];
        if (rule == "bucket") {
            Fulva::Layout layout{number(w[1]), 1};
            got = std::to_string(layout.bucketOf(number(w[2])));
        } else if (rule == "partition") {
            Fulva::Layout layout{number(w[1]),
                                 static_cast<uint32_t>(number(w[2]))};
            got = std::to_string(layout.partitionOfBucket(number(w[3])));
        } else if (rule == "covered") {
            Fulva::Layout layout{number(w[1]),
                                 static_cast<uint32_t>(number(w[2]))};
            std::vector<uint64_t> marks;
            std::istringstream list(w[3]);
            std::string item;
            while (std::getline(list, item, ','))
                marks.push_back(number(item));
            got = layout.isCovered(number(w[4]), marks.data()) ? "yes" : "no";
        } else if (rule == "read") {
            got = answerName(Fulva::answerRead(entry(w[1]), w[2] == "yes"));
        } else if (rule == "reverse-read") {
            got = answerName(Fulva::answerReverseRead(entry(w[1]),
                    number(w[2]), number(w[3]), false, w[4] == "yes"));
        } else if (rule == "admit") {
            Fulva::RequestKind kind =
                    w[1] == "read" ? Fulva::RequestKind::READ :
                    w[1] == "blindWrite" ? Fulva::RequestKind::BLIND_WRITE :
                    w[1] == "blindRemove" ? Fulva::RequestKind::BLIND_REMOVE :
                    w[1] == "readModifyWrite" ?
                            Fulva::RequestKind::READ_MODIFY_WRITE :
                            Fulva::RequestKind::ENUMERATION;
            Fulva::Phase phase =
                    w[2] == "preparing" ? Fulva::Phase::PREPARING :
                    w[2] == "moving" ? Fulva::Phase::MOVING :
                    w[2] == "finished" ? Fulva::Phase::FINISHED :
                    Fulva::Phase::ABANDONED;
            got = admissionName(Fulva::admit(kind, phase, w[3] == "rocksteady",
                                             w[4] == "yes"));
        } else if (rule == "version") {
            got = std::to_string(Fulva::versionForWrite(entry(w[1]),
                    number(w[2]), number(w[3]), number(w[4])));
        } else if (rule == "replay") {
            got = Fulva::replayReplaces(entry(w[1]), number(w[2]),
                    entry(w[3]), number(w[4])) ? "yes" : "no";
        } else if (rule == "bound") {
            got = std::to_string(Fulva::versionBound(number(w[1]),
                                                     number(w[2])));
        } else if (rule == "tag") {
            Fulva::Tag tag = {};
            tag.role = w[1] == "source" ? Fulva::Role::SOURCE :
                    w[1] == "destination" ? Fulva::Role::DESTINATION :
                    Fulva::Role::ENDED;
            tag.migration = number(w[2]);
            tag.epoch = static_cast<uint32_t>(number(w[3]));
            std::vector<uint64_t> fields = numbers(w[4]);
            tag.withIdentity = fields.size() == 8;
            if (tag.withIdentity) {
                tag.source = fields[0];
                tag.destination = fields[1];
                tag.strategyCode = static_cast<uint8_t>(fields[2]);
                tag.tableId = fields[3];
                tag.firstKeyHash = fields[4];
                tag.lastKeyHash = fields[5];
                tag.layout = Fulva::Layout{fields[6],
                                           static_cast<uint32_t>(fields[7])};
            }
            std::vector<uint64_t> marks = numbers(w[5]);
            tag.watermarks = marks.data();
            tag.watermarkCount = static_cast<uint32_t>(marks.size());
            std::string bytes = Fulva::encodeTag(tag);
            static const char digits[] = "0123456789abcdef";
            for (unsigned char c : bytes) {
                got.push_back(digits[c >> 4]);
                got.push_back(digits[c & 15]);
            }
        } else {
            check(false, "unknown rule in: %s", line.c_str());
            continue;
        }
        cases++;
        check(got == want, "C++ rule: %s (got %s)", line.c_str(), got.c_str());
    }
    check(cases > 100, "%d rule cases checked", cases);
}

} // namespace

int
main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <libFulvaPlugin.so> <rules.txt>\n",
                argv[0]);
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    check(library != NULL, "dlopen %s (%s)", argv[1],
          library ? "" : dlerror());
    if (library != NULL) {
        Plugin plugin;
        bool all = resolve(library, "fulva_plugin_abi_version",
                           &plugin.abiVersion)
                & resolve(library, "fulva_plugin_start", &plugin.start)
                & resolve(library, "fulva_plugin_migrate", &plugin.migrate)
                & resolve(library, "fulva_plugin_drive", &plugin.drive)
                & resolve(library, "fulva_plugin_status", &plugin.status)
                & resolve(library, "fulva_plugin_source_prepare",
                          &plugin.sourcePrepare)
                & resolve(library, "fulva_plugin_source_end",
                          &plugin.sourceEnd)
                & resolve(library, "fulva_plugin_stop", &plugin.stop);
        if (all) {
            check(plugin.abiVersion() == FULVA_ABI_VERSION,
                  "plugin ABI version %u == header's %u",
                  plugin.abiVersion(), FULVA_ABI_VERSION);
            drivePlugin(plugin);
        }
    }
    checkRules(argv[2]);
    printf("%s: %d failure(s)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}
