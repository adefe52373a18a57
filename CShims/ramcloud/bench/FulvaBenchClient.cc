/* Copyright (c) 2026 Fulva authors.
 *
 * fulva-bench-client: the load of `rc-migrate bench`, an ordinary RAMCloud
 * client (RamCloud.h, with the client shim when the plugin is there).
 *
 *   load: writes records [first, end) of the table with multiWrite.
 *   run:  a closed loop of YCSB-style reads and writes with `outstanding`
 *         requests in flight (RAMCloud's asynchronous ReadRpc/WriteRpc),
 *         keys drawn from a Zipf or uniform distribution, until the stop
 *         file appears or the time limit passes.
 *
 * run writes one fixed 24-byte record per operation to the output file
 * (struct OperationRecord: CLOCK_MONOTONIC start and end, kind, flags) for
 * the benchmark to turn into histograms, and prints one JSON line of
 * totals on stdout (operations, failures, the bytes this process moved on
 * the network, the shim's counters).
 */

#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ClientException.h"
#include "Key.h"
#include "MultiWrite.h"
#include "PerfStats.h"
#include "RamCloud.h"
#include "fulva/FulvaShim.h"

using namespace RAMCloud; // NOLINT

namespace {

/// What run writes per operation; `rc-migrate bench` reads the same layout
/// (Sources/rc-migrate/Benchmark.swift, BenchRecord).
struct OperationRecord {
    uint64_t startNanos;
    uint64_t endNanos;
    uint8_t kind;           // 0 read, 1 write
    uint8_t flags;          // FLAG_*
    uint8_t reserved[6];
} __attribute__((packed));
static_assert(sizeof(OperationRecord) == 24, "record layout");

enum { KIND_READ = 0, KIND_WRITE = 1 };
enum {
    FLAG_MIGRATING = 1,     // the key's hash lies in the migrating range
    FLAG_FAILED = 2,        // an error, or no answer within the timeout
};

uint64_t
monotonicNanos()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1000000000u +
            static_cast<uint64_t>(t.tv_nsec);
}

/// YCSB's Zipfian generator (Gray et al., "Quickly generating billion-
/// record synthetic databases"): item i is drawn with probability
/// proportional to 1 / (i + 1)^theta. Item 0 is the hottest; keys are
/// placed in the table by RAMCloud's key hash, so hot items are spread
/// over the hash range like any other.
class Zipf {
  public:
    Zipf(uint64_t items, double theta)
        : items(items), theta(theta), alpha(1.0 / (1.0 - theta))
        , zetaN(zeta(items, theta)), eta(0)
    {
        double zeta2 = zeta(2, theta);
        eta = (1 - pow(2.0 / static_cast<double>(items), 1 - theta)) /
                (1 - zeta2 / zetaN);
    }
    uint64_t next(double u) const
    {
        double uz = u * zetaN;
        if (uz < 1.0)
            return 0;
        if (uz < 1.0 + pow(0.5, theta))
            return 1;
        uint64_t item = static_cast<uint64_t>(static_cast<double>(items) *
                pow(eta * u - eta + 1, alpha));
        return item < items ? item : items - 1;
    }

  private:
    static double zeta(uint64_t n, double theta)
    {
        double sum = 0;
        for (uint64_t i = 0; i < n; i++)
            sum += 1.0 / pow(static_cast<double>(i + 1), theta);
        return sum;
    }
    uint64_t items;
    double theta;
    double alpha;
    double zetaN;
    double eta;
};

struct Options {
    std::string mode;
    std::string coordinator;
    std::string cluster = "main";
    std::string table;
    uint64_t records = 0;
    uint64_t first = 0;
    uint64_t end = 0;
    uint32_t valueBytes = 100;
    double readRatio = 0.95;
    std::string distribution = "zipf";
    double zipfTheta = 0.99;
    uint32_t outstanding = 1;
    uint64_t migratingFirstHash = 1;
    uint64_t migratingLastHash = 0;     // empty range by default
    std::string stopFile;
    double seconds = 600;
    uint32_t timeoutMillis = 1000;
    uint64_t seed = 1;
    std::string output;
};

std::string
keyOf(uint64_t record)
{
    char key[24];
    snprintf(key, sizeof(key), "user%012" PRIu64, record);
    return key;
}

[[noreturn]] void
usage(const char* message)
{
    fprintf(stderr, "fulva-bench-client: %s\n"
            "usage: fulva-bench-client load|run --coordinator L --table T "
            "--records N [--first I --end J] [--value-bytes B]\n"
            "       [--read-ratio R] [--distribution zipf|uniform] [--zipf "
            "THETA] [--outstanding K] [--migrating FIRST:LAST]\n"
            "       [--stop-file F] [--seconds S] [--timeout-ms M] [--seed "
            "S] [--output FILE] [--cluster NAME]\n", message);
    exit(64);
}

Options
parse(int argc, char** argv)
{
    if (argc < 2)
        usage("no mode");
    Options o;
    o.mode = argv[1];
    if (o.mode != "load" && o.mode != "run")
        usage("the mode is load or run");
    static const struct option longOptions[] = {
        {"coordinator", required_argument, NULL, 'c'},
        {"cluster", required_argument, NULL, 'C'},
        {"table", required_argument, NULL, 't'},
        {"records", required_argument, NULL, 'n'},
        {"first", required_argument, NULL, 'f'},
        {"end", required_argument, NULL, 'e'},
        {"value-bytes", required_argument, NULL, 'v'},
        {"read-ratio", required_argument, NULL, 'r'},
        {"distribution", required_argument, NULL, 'd'},
        {"zipf", required_argument, NULL, 'z'},
        {"outstanding", required_argument, NULL, 'k'},
        {"migrating", required_argument, NULL, 'm'},
        {"stop-file", required_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 'S'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 'R'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longOptions, NULL)) != -1) {
        switch (c) {
        case 'c': o.coordinator = optarg; break;
        case 'C': o.cluster = optarg; break;
        case 't': o.table = optarg; break;
        case 'n': o.records = strtoull(optarg, NULL, 10); break;
        case 'f': o.first = strtoull(optarg, NULL, 10); break;
        case 'e': o.end = strtoull(optarg, NULL, 10); break;
        case 'v': o.valueBytes = static_cast<uint32_t>(atoi(optarg)); break;
        case 'r': o.readRatio = atof(optarg); break;
        case 'd': o.distribution = optarg; break;
        case 'z': o.zipfTheta = atof(optarg); break;
        case 'k': o.outstanding = static_cast<uint32_t>(atoi(optarg)); break;
        case 'm':
            if (sscanf(optarg, "%" SCNx64 ":%" SCNx64, &o.migratingFirstHash,
                       &o.migratingLastHash) != 2)
                usage("--migrating takes FIRST:LAST key hashes in hex");
            break;
        case 's': o.stopFile = optarg; break;
        case 'S': o.seconds = atof(optarg); break;
        case 'T': o.timeoutMillis = static_cast<uint32_t>(atoi(optarg));
            break;
        case 'R': o.seed = strtoull(optarg, NULL, 10); break;
        case 'o': o.output = optarg; break;
        default: usage("unknown option");
        }
    }
    if (o.coordinator.empty() || o.table.empty() || o.records == 0)
        usage("--coordinator, --table and --records are required");
    if (o.end == 0)
        o.end = o.records;
    if (o.first >= o.end || o.end > o.records)
        usage("--first/--end must be a non-empty part of the records");
    if (o.valueBytes == 0 || o.valueBytes > 1000000)
        usage("--value-bytes must be in 1...1000000");
    if (o.readRatio < 0 || o.readRatio > 1)
        usage("--read-ratio must be in 0...1");
    if (o.distribution != "zipf" && o.distribution != "uniform")
        usage("--distribution is zipf or uniform");
    if (o.zipfTheta <= 0 || o.zipfTheta >= 1)
        usage("--zipf must be in (0, 1)");
    if (o.outstanding == 0 || o.outstanding > 64)
        usage("--outstanding must be in 1...64");
    if (o.mode == "run" && o.output.empty())
        usage("run needs --output");
    return o;
}

int
load(RamCloud& ramcloud, uint64_t tableId, const Options& o)
{
    const uint64_t batch = 200;
    std::string value(o.valueBytes, 'v');
    std::vector<std::string> keys(batch);
    std::vector<std::unique_ptr<MultiWriteObject>> objects(batch);
    std::vector<MultiWriteObject*> pointers(batch);
    for (uint64_t at = o.first; at < o.end; at += batch) {
        uint64_t count = std::min(batch, o.end - at);
        for (uint64_t i = 0; i < count; i++) {
            keys[i] = keyOf(at + i);
            objects[i].reset(new MultiWriteObject(tableId, keys[i].data(),
                    downCast<uint16_t>(keys[i].size()), value.data(),
                    o.valueBytes));
            pointers[i] = objects[i].get();
        }
        ramcloud.multiWrite(pointers.data(), downCast<uint32_t>(count));
        for (uint64_t i = 0; i < count; i++) {
            if (objects[i]->status != STATUS_OK) {
                fprintf(stderr, "fulva-bench-client: writing %s: %s\n",
                        keys[i].c_str(), statusToString(objects[i]->status));
                return 1;
            }
        }
    }
    printf("{\"loaded\": %" PRIu64 "}\n", o.end - o.first);
    return 0;
}

/// One operation in flight.
struct Slot {
    std::unique_ptr<ReadRpc> read;
    std::unique_ptr<WriteRpc> write;
    Buffer value;
    std::string key;
    uint64_t startNanos = 0;
    uint8_t kind = KIND_READ;
    uint8_t flags = 0;
    bool busy() const { return read || write; }
};

int
run(RamCloud& ramcloud, uint64_t tableId, const Options& o)
{
    FILE* out = fopen(o.output.c_str(), "w");
    if (out == NULL) {
        fprintf(stderr, "fulva-bench-client: cannot write %s: %s\n",
                o.output.c_str(), strerror(errno));
        return 1;
    }
    std::mt19937_64 random(o.seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::uniform_int_distribution<uint64_t> uniform(o.first, o.end - 1);
    std::unique_ptr<Zipf> zipf;
    if (o.distribution == "zipf")
        zipf.reset(new Zipf(o.end - o.first, o.zipfTheta));
    std::string value(o.valueBytes, 'w');
    std::vector<Slot> slots(o.outstanding);
    PerfStats::registerStats(&PerfStats::threadStats);
    uint64_t inputBefore = PerfStats::threadStats.networkInputBytes;
    uint64_t outputBefore = PerfStats::threadStats.networkOutputBytes;
    const uint64_t began = monotonicNanos();
    const uint64_t deadline = began + static_cast<uint64_t>(o.seconds * 1e9);
    const uint64_t timeout = uint64_t(o.timeoutMillis) * 1000000u;
    uint64_t operations = 0, failed = 0, timedOut = 0;
    uint64_t nextStopCheck = began;
    bool stopping = false;

    auto start = [&](Slot& slot) {
        uint64_t record = zipf ? o.first + zipf->next(unit(random))
                               : uniform(random);
        slot.key = keyOf(record);
        uint16_t keyLength = downCast<uint16_t>(slot.key.size());
        uint64_t hash = Key::getHash(tableId, slot.key.data(), keyLength);
        slot.flags = (hash >= o.migratingFirstHash &&
                      hash <= o.migratingLastHash) ? FLAG_MIGRATING : 0;
        slot.kind = unit(random) < o.readRatio ? KIND_READ : KIND_WRITE;
        slot.startNanos = monotonicNanos();
        try {
            if (slot.kind == KIND_READ)
                slot.read.reset(new ReadRpc(&ramcloud, tableId,
                        slot.key.data(), keyLength, &slot.value));
            else
                slot.write.reset(new WriteRpc(&ramcloud, tableId,
                        slot.key.data(), keyLength, value.data(),
                        o.valueBytes));
        } catch (ClientException& e) {
            slot.read.reset();
            slot.write.reset();
            OperationRecord r = {slot.startNanos, monotonicNanos(),
                    slot.kind, uint8_t(slot.flags | FLAG_FAILED), {0}};
            fwrite(&r, sizeof(r), 1, out);
            operations++;
            failed++;
        }
    };
    auto finish = [&](Slot& slot, bool expired) {
        uint8_t flags = slot.flags;
        if (expired) {
            flags |= FLAG_FAILED;
            timedOut++;
            if (slot.read) slot.read->cancel();
            if (slot.write) slot.write->cancel();
        } else {
            try {
                if (slot.read) {
                    bool exists = false;
                    slot.read->wait(NULL, &exists);
                    if (!exists)
                        flags |= FLAG_FAILED;   // every record was loaded
                } else {
                    slot.write->wait();
                }
            } catch (ClientException& e) {
                flags |= FLAG_FAILED;
            }
        }
        OperationRecord r = {slot.startNanos, monotonicNanos(), slot.kind,
                             flags, {0}};
        fwrite(&r, sizeof(r), 1, out);
        operations++;
        if (flags & FLAG_FAILED)
            failed++;
        slot.read.reset();
        slot.write.reset();
    };

    while (true) {
        uint64_t now = monotonicNanos();
        if (now >= nextStopCheck) {
            nextStopCheck = now + 50000000u;
            stopping = now >= deadline ||
                    (!o.stopFile.empty() && access(o.stopFile.c_str(), F_OK) == 0);
        }
        bool anyBusy = false;
        for (Slot& slot : slots) {
            if (slot.busy()) {
                bool ready = slot.read ? slot.read->isReady()
                                       : slot.write->isReady();
                if (ready || now - slot.startNanos > timeout)
                    finish(slot, !ready);
            }
            if (!slot.busy() && !stopping)
                start(slot);
            anyBusy |= slot.busy();
        }
        if (stopping && !anyBusy)
            break;
        ramcloud.poll();
    }
    fclose(out);

    struct fulva_shim_counters shim;
    memset(&shim, 0, sizeof(shim));
    bool loaded = ramcloud.fulvaShim != NULL &&
            ramcloud.fulvaShim->counters(&shim);
    printf("{\"operations\": %" PRIu64 ", \"failed\": %" PRIu64
           ", \"timedOut\": %" PRIu64 ", \"seconds\": %.3f"
           ", \"networkInputBytes\": %" PRIu64
           ", \"networkOutputBytes\": %" PRIu64
           ", \"shim\": {\"loaded\": %s, \"reads\": %" PRIu64
           ", \"dualReads\": %" PRIu64 ", \"routed\": %" PRIu64
           ", \"tagBytes\": %" PRIu64 ", \"migrationsLearned\": %" PRIu64
           "}}\n", operations, failed, timedOut,
           static_cast<double>(monotonicNanos() - began) / 1e9,
           PerfStats::threadStats.networkInputBytes - inputBefore,
           PerfStats::threadStats.networkOutputBytes - outputBefore,
           loaded ? "true" : "false", shim.reads, shim.dualReads,
           shim.routed, shim.tagBytes, shim.migrationsLearned);
    return 0;
}

} // namespace

int
main(int argc, char** argv)
{
    Options o = parse(argc, argv);
    // A benchmark killed mid-run leaves no load behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    try {
        RamCloud ramcloud(o.coordinator.c_str(), o.cluster.c_str());
        uint64_t tableId = ramcloud.getTableId(o.table.c_str());
        return o.mode == "load" ? load(ramcloud, tableId, o)
                                : run(ramcloud, tableId, o);
    } catch (ClientException& e) {
        fprintf(stderr, "fulva-bench-client: %s\n", e.str().c_str());
        return 1;
    } catch (Exception& e) {
        fprintf(stderr, "fulva-bench-client: %s\n", e.str().c_str());
        return 1;
    }
}
