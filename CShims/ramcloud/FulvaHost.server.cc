/* Copyright (c) 2026 Fulva authors.
 *
 * FulvaHost: the bytes-and-internals half of Fulva inside a RAMCloud master
 * (see FulvaHost.h). Decisions come from the Swift plugin (FulvaCore) and,
 * on the request path, from FulvaRules.h, which mirrors FulvaCore.
 */

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "fulva/FulvaHost.h"

#include "ClientException.h"
#include "CoordinatorClient.h"
#include "Cycles.h"
#include "LogProtector.h"
#include "MasterService.h"
#include "Object.h"
#include "OptionParser.h"
#include "PerfStats.h"
#include "PreparedOp.h"
#include "RpcResult.h"
#include "ServerIdRpcWrapper.h"
#include "ServerList.h"
#include "ShortMacros.h"
#include "TableStats.h"
#include "WallTime.h"
#include "WorkerManager.h"

namespace RAMCloud {

namespace {

/// Writes a message into a caller's buffer, always terminated.
void
report(char* error, size_t errorLength, const string& what)
{
    if (error != NULL && errorLength > 0)
        snprintf(error, errorLength, "%s", what.c_str());
}

/**
 * Runs one host operation for the plugin: every RAMCloud exception becomes
 * a status and a message, since nothing may unwind into Swift.
 */
template<typename Body>
int
guarded(char* error, size_t errorLength, Body body)
{
    try {
        return body();
    } catch (ServerNotUpException& e) {
        report(error, errorLength, "a server this step needs is not up: " +
               e.str());
        return FULVA_ERROR_UNAVAILABLE;
    } catch (ClientException& e) {
        report(error, errorLength, e.str());
        return static_cast<int>(e.status);
    } catch (Exception& e) {
        report(error, errorLength, e.str());
        return FULVA_ERROR_INTERNAL;
    }
}

/// A key as the per-migration sets store it (the table is the migration's).
string
keyString(Key& key)
{
    return string(static_cast<const char*>(key.getStringKey()),
                  key.getStringKeyLength());
}

/// How long a driver thread waits for one RPC to another master.
const double RPC_TIMEOUT_SECONDS = 30.0;
/// The paced drop (removeOrphanedObjectsPaced) sleeps this long after
/// every this many hash-table buckets.
const uint64_t DROP_BUCKETS_PER_PAUSE = 2048;
const useconds_t DROP_PAUSE_MICROS = 200;

/// Partitions a tag reports (MigrationRequest.maxPartitions: the most a
/// migration may have).
const uint32_t MAX_TAG_PARTITIONS = 256;

/**
 * Waits for an RPC from a thread that is neither the dispatch thread nor a
 * worker (the plugin's driver thread), without spinning a core: checks
 * isReady() and sleeps briefly in between. Returns false on timeout.
 */
template<typename Rpc>
bool
waitPolitely(Rpc* rpc, double seconds)
{
    uint64_t deadline = Cycles::rdtsc() + Cycles::fromSeconds(seconds);
    while (!rpc->isReady()) {
        if (Cycles::rdtsc() > deadline)
            return false;
        usleep(20);
    }
    return true;
}

/// The source's answer to Prepare.
class FulvaPrepareRpc : public ServerIdRpcWrapper {
  public:
    FulvaPrepareRpc(Context* context, ServerId source,
                    const fulva_migration_request& migration)
        : ServerIdRpcWrapper(context, source,
                sizeof(WireFormat::FulvaPrepare::Response))
    {
        WireFormat::FulvaPrepare::Request* reqHdr(
                allocHeader<WireFormat::FulvaPrepare>(source));
        memcpy(&reqHdr->migration, &migration, sizeof(migration));
        send();
    }
    void wait() { waitAndCheckErrors(); }
    Buffer* reply() { return response; }
    DISALLOW_COPY_AND_ASSIGN(FulvaPrepareRpc);
};

class FulvaPullRpc : public ServerIdRpcWrapper {
  public:
    FulvaPullRpc(Context* context, ServerId source, uint64_t migrationId,
                 const fulva_tablet& tablet, uint64_t firstBucket,
                 uint64_t endBucket, uint32_t maxBytes)
        : ServerIdRpcWrapper(context, source,
                sizeof(WireFormat::FulvaPull::Response))
    {
        WireFormat::FulvaPull::Request* reqHdr(
                allocHeader<WireFormat::FulvaPull>(source));
        reqHdr->migrationId = migrationId;
        memcpy(&reqHdr->tablet, &tablet, sizeof(tablet));
        reqHdr->firstBucket = firstBucket;
        reqHdr->endBucket = endBucket;
        reqHdr->maxBytes = maxBytes;
        send();
    }
    void wait() { waitAndCheckErrors(); }
    Buffer* reply() { return response; }
    DISALLOW_COPY_AND_ASSIGN(FulvaPullRpc);
};

/// RAMCloud's ECHO to a server by id: a reply of `echoLength` bytes from
/// the server's memory, with no work behind it (the transfer probe).
class FulvaEchoRpc : public ServerIdRpcWrapper {
  public:
    FulvaEchoRpc(Context* context, ServerId server, uint32_t echoLength)
        : ServerIdRpcWrapper(context, server,
                sizeof(WireFormat::Echo::Response))
    {
        WireFormat::Echo::Request* reqHdr(allocHeader<WireFormat::Echo>());
        reqHdr->length = 0;
        reqHdr->echoLength = echoLength;
        send();
    }
    void wait() { waitAndCheckErrors(); }
    uint32_t replyBytes() { return response->size(); }
    DISALLOW_COPY_AND_ASSIGN(FulvaEchoRpc);
};

class FulvaPriorityPullRpc : public ServerIdRpcWrapper {
  public:
    FulvaPriorityPullRpc(Context* context, ServerId source,
                         uint64_t migrationId, Key& key)
        : ServerIdRpcWrapper(context, source,
                sizeof(WireFormat::FulvaPriorityPull::Response))
    {
        WireFormat::FulvaPriorityPull::Request* reqHdr(
                allocHeader<WireFormat::FulvaPriorityPull>(source));
        reqHdr->migrationId = migrationId;
        reqHdr->tableId = key.getTableId();
        reqHdr->keyLength = key.getStringKeyLength();
        request.appendCopy(key.getStringKey(), key.getStringKeyLength());
        send();
    }
    void wait() { waitAndCheckErrors(); }
    Buffer* reply() { return response; }
    DISALLOW_COPY_AND_ASSIGN(FulvaPriorityPullRpc);
};

class FulvaDropRpc : public ServerIdRpcWrapper {
  public:
    FulvaDropRpc(Context* context, ServerId source, uint64_t migrationId,
                 const fulva_tablet& tablet, bool release)
        : ServerIdRpcWrapper(context, source,
                sizeof(WireFormat::FulvaDrop::Response))
    {
        WireFormat::FulvaDrop::Request* reqHdr(
                allocHeader<WireFormat::FulvaDrop>(source));
        reqHdr->migrationId = migrationId;
        memcpy(&reqHdr->tablet, &tablet, sizeof(tablet));
        reqHdr->release = release ? 1 : 0;
        send();
    }
    void wait() { waitAndCheckErrors(); }
    DISALLOW_COPY_AND_ASSIGN(FulvaDropRpc);
};

/// The key that follows a request header with a keyLength field, or NULL
/// (the reply then says STATUS_REQUEST_FORMAT_ERROR).
template<typename Request, typename Response>
const void*
keyOf(const Request* reqHdr, Response* respHdr, Service::Rpc* rpc)
{
    const void* key = rpc->requestPayload->getRange(sizeof32(*reqHdr),
                                                    reqHdr->keyLength);
    if (key == NULL)
        respHdr->common.status = STATUS_REQUEST_FORMAT_ERROR;
    return key;
}

/// Appends one object to a pull or priority-pull reply.
void
appendObject(Object& object, Buffer* reply)
{
    WireFormat::FulvaObject header;
    header.version = object.getVersion();
    header.timestamp = object.getTimestamp();
    header.keysAndValueLength = object.getKeysAndValueLength();
    header.tombstone = 0;
    reply->appendCopy(&header, sizeof32(header));
    // Copied: the log entry may be cleaned once the bucket lock is gone.
    reply->appendCopy(object.getKeysAndValue(), header.keysAndValueLength);
}

/// Appends a removal (a reverse run's pulls carry them): the key's bytes,
/// removed at `version`.
void
appendTombstone(const string& key, uint64_t version, Buffer* reply)
{
    WireFormat::FulvaObject header;
    header.version = version;
    header.timestamp = 0;
    header.keysAndValueLength = downCast<uint32_t>(key.size());
    header.tombstone = 1;
    reply->appendCopy(&header, sizeof32(header));
    reply->appendCopy(key.data(), header.keysAndValueLength);
}

} // namespace

FulvaHost::Target::Target(const fulva_migration_request& request,
                          uint64_t versionFloor, uint64_t bucketCount,
                          uint32_t partitions)
    : request(request)
    , versionFloor(versionFloor)
    , layout{bucketCount, partitions}
    , watermarks(new std::atomic<uint64_t>[partitions])
    , mutex()
    , removed()
    , fetched()
    , trustFrom(0)
    , preparing(false)
    , priorityPulls(0)
    , epoch(1)
{
    for (uint32_t p = 0; p < partitions; p++)
        watermarks[p].store(layout.firstBucket(p));
}

bool
FulvaHost::Target::isCovered(uint64_t keyHash) const
{
    uint64_t bucket = layout.bucketOf(keyHash);
    uint32_t p = layout.partitionOfBucket(bucket);
    // Acquire: pairs with the release in opPublishWatermark, so the
    // replayed entries below the watermark are visible.
    return bucket < watermarks[p].load(std::memory_order_acquire);
}

bool
FulvaHost::Target::knows(const string& key)
{
    std::lock_guard<std::mutex> guard(mutex);
    return removed.count(key) != 0 || fetched.count(key) != 0;
}

FulvaHost::FulvaHost(Context* context, MasterService* master)
    : context(context)
    , master(master)
    , self()
    , ops()
    , plugin(NULL)
    , pluginMigrate(NULL)
    , pluginDrive(NULL)
    , pluginStatus(NULL)
    , pluginSourcePrepare(NULL)
    , pluginSourceEnd(NULL)
    , lock("FulvaHost::lock")
    , targets()
    , sources()
    , cancelled()
    , incoming()
    , targetCount(0)
    , sourceCount(0)
    , externalStorage()
    , clusterName()
{
    memset(&ops, 0, sizeof(ops));
}

FulvaHost::~FulvaHost()
{
    // The plugin stays loaded (RTLD_NODELETE): its threads may outlive us.
}

/**
 * Loads the plugin named by FULVA_PLUGIN, if any. A plugin of another ABI
 * version, or one that fails to start, is refused with a log line and the
 * master runs as stock RAMCloud.
 */
void
FulvaHost::loadPlugin(ServerId self)
{
    this->self = self;
    const char* path = getenv("FULVA_PLUGIN");
    if (path == NULL || path[0] == '\0') {
        LOG(NOTICE, "Fulva: no plugin (FULVA_PLUGIN unset); live migration "
                "with Fulva is off on this master");
        return;
    }
    // RTLD_NODELETE: unloading after Swift started threads crashes the host.
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (library == NULL) {
        LOG(ERROR, "Fulva: cannot load plugin %s: %s; running without it",
                path, dlerror());
        return;
    }
    uint32_t (*abiVersion)(void) = reinterpret_cast<uint32_t (*)(void)>(
            dlsym(library, "fulva_plugin_abi_version"));
    if (abiVersion == NULL) {
        LOG(ERROR, "Fulva: %s is not a Fulva plugin (no "
                "fulva_plugin_abi_version); running without it", path);
        return;
    }
    if (abiVersion() != FULVA_ABI_VERSION) {
        LOG(ERROR, "Fulva: refusing plugin %s: it has ABI version %u, this "
                "master needs %u (rebuild one of them); running without it",
                path, abiVersion(), FULVA_ABI_VERSION);
        return;
    }
    int (*start)(const fulva_host_ops*, void**, char*, size_t) =
            reinterpret_cast<int (*)(const fulva_host_ops*, void**, char*,
                                     size_t)>(
            dlsym(library, "fulva_plugin_start"));
    pluginMigrate = reinterpret_cast<int (*)(void*,
            const fulva_migration_request*, char*, size_t)>(
            dlsym(library, "fulva_plugin_migrate"));
    pluginDrive = reinterpret_cast<int (*)(void*, uint64_t)>(
            dlsym(library, "fulva_plugin_drive"));
    pluginStatus = reinterpret_cast<int (*)(void*, uint64_t,
            fulva_migration_status*)>(dlsym(library, "fulva_plugin_status"));
    pluginSourcePrepare = reinterpret_cast<int (*)(void*,
            const fulva_migration_request*, uint64_t, uint64_t, uint64_t,
            uint64_t*, char*, size_t)>(
            dlsym(library, "fulva_plugin_source_prepare"));
    pluginSourceEnd = reinterpret_cast<int (*)(void*, uint64_t)>(
            dlsym(library, "fulva_plugin_source_end"));
    if (start == NULL || pluginMigrate == NULL || pluginDrive == NULL ||
            pluginStatus == NULL || pluginSourcePrepare == NULL ||
            pluginSourceEnd == NULL) {
        LOG(ERROR, "Fulva: plugin %s lacks entry points of ABI version %u; "
                "running without it", path, FULVA_ABI_VERSION);
        return;
    }

    ops.structSize = sizeof32(ops);
    ops.abiVersion = FULVA_ABI_VERSION;
    ops.context = this;
    ops.serverId = self.getId();
    externalStorage = context->options != NULL ?
            context->options->getExternalStorageLocator() : "";
    clusterName = context->options != NULL ?
            context->options->getClusterName() : "main";
    ops.externalStorage = externalStorage.c_str();
    ops.clusterName = clusterName.c_str();
    ops.log = &FulvaHost::opLog;
    ops.prepare_source = &FulvaHost::opPrepareSource;
    ops.take_ownership = &FulvaHost::opTakeOwnership;
    ops.pull = &FulvaHost::opPull;
    ops.publish_watermark = &FulvaHost::opPublishWatermark;
    ops.finish = &FulvaHost::opFinish;
    ops.abandon = &FulvaHost::opAbandon;
    char error[256] = "";
    void* handle = NULL;
    int status = start(&ops, &handle, error, sizeof(error));
    if (status != FULVA_OK || handle == NULL) {
        LOG(ERROR, "Fulva: plugin %s refused to start (%d: %s); running "
                "without it", path, status, error);
        return;
    }
    plugin = handle;
    LOG(NOTICE, "Fulva: plugin %s loaded (ABI version %u)", path,
            FULVA_ABI_VERSION);
}

void
FulvaHost::log(int level, const char* message)
{
    switch (level) {
    case 0: LOG(DEBUG, "Fulva: %s", message); break;
    case 1: LOG(NOTICE, "Fulva: %s", message); break;
    case 2: LOG(WARNING, "Fulva: %s", message); break;
    default: LOG(ERROR, "Fulva: %s", message); break;
    }
}

std::shared_ptr<FulvaHost::Target>
FulvaHost::findTarget(uint64_t tableId, uint64_t keyHash)
{
    SpinLock::Guard guard(lock);
    for (auto& target : targets) {
        if (target->contains(tableId, keyHash))
            return target;
    }
    return std::shared_ptr<Target>();
}

std::shared_ptr<FulvaHost::Target>
FulvaHost::findTarget(uint64_t migrationId)
{
    SpinLock::Guard guard(lock);
    for (auto& target : targets) {
        if (target->request.migrationId == migrationId)
            return target;
    }
    return std::shared_ptr<Target>();
}

// MARK: destination: control RPCs

void
FulvaHost::migrate(const WireFormat::FulvaMigrate::Request* reqHdr,
                   WireFormat::FulvaMigrate::Response* respHdr,
                   Service::Rpc* rpc)
{
    fulva_migration_request request;
    memcpy(&request, &reqHdr->migration, sizeof(request));
    char error[256] = "";
    int status;
    if (plugin == NULL) {
        snprintf(error, sizeof(error), "no Fulva plugin on this master "
                 "(server %s started without FULVA_PLUGIN)",
                 self.toString().c_str());
        status = FULVA_ERROR_UNAVAILABLE;
    } else {
        status = pluginMigrate(plugin, &request, error, sizeof(error));
    }
    if (status == FULVA_OK) {
        // The plugin drives the migration on a thread of its own: its host
        // operations block on RPCs, which worker threads must not do for
        // the migration's whole length.
        uint64_t id = request.migrationId;
        std::thread([this, id] { pluginDrive(plugin, id); }).detach();
        error[0] = '\0';
    }
    respHdr->fulvaStatus = status;
    respHdr->errorLength = downCast<uint32_t>(strlen(error));
    rpc->replyPayload->appendCopy(error, respHdr->errorLength);
}

void
FulvaHost::status(const WireFormat::FulvaStatus::Request* reqHdr,
                  WireFormat::FulvaStatus::Response* respHdr,
                  Service::Rpc* rpc)
{
    fulva_migration_status s;
    memset(&s, 0, sizeof(s));
    int status = plugin == NULL ? FULVA_ERROR_UNAVAILABLE
            : pluginStatus(plugin, reqHdr->migrationId, &s);
    respHdr->fulvaStatus = status;
    memcpy(&respHdr->status, &s, sizeof(s));
}

// MARK: source: Prepare, pulls, drop

/// Prepared transaction operations on the tablet that await a decision.
uint32_t
FulvaHost::preparedOperationsIn(const fulva_tablet& tablet)
{
    TransactionManager& tm = master->transactionManager;
    ObjectManager& om = master->objectManager;
    uint32_t count = 0;
    TransactionManager::Lock guard(tm.mutex);
    for (auto& entry : tm.items) {
        if (entry.second == NULL)
            continue;
        Buffer buffer;
        om.log.getEntry(Log::Reference(entry.second->newOpPtr), buffer);
        PreparedOp op(buffer, 0, buffer.size());
        KeyHash hash = op.object.getPKHash();
        if (op.object.getTableId() == tablet.tableId &&
                hash >= tablet.firstKeyHash && hash <= tablet.lastKeyHash)
            count++;
    }
    return count;
}

/// Appends the tablet's linearizable-RPC completion records to `out`,
/// each as a uint32_t length and the RpcResult log entry.
void
FulvaHost::collectCompletionRecords(const fulva_tablet& tablet, Buffer* out,
                                    uint32_t* count)
{
    UnackedRpcResults& results = master->unackedRpcResults;
    ObjectManager& om = master->objectManager;
    UnackedRpcResults::Lock guard(results.mutex);
    for (auto& client : results.clients) {
        UnackedRpcResults::Client* c = client.second;
        for (int i = 0; i < c->len; i++) {
            if (c->rpcs[i].id == 0 || c->rpcs[i].result == NULL)
                continue;
            Buffer entry;
            uint64_t reference = reinterpret_cast<uint64_t>(
                    c->rpcs[i].result);
            if (om.log.getEntry(Log::Reference(reference), entry) !=
                    LOG_ENTRY_TYPE_RPCRESULT)
                continue;
            RpcResult result(entry);
            KeyHash hash = result.getKeyHash();
            if (result.getTableId() != tablet.tableId ||
                    hash < tablet.firstKeyHash || hash > tablet.lastKeyHash)
                continue;
            uint32_t length = entry.size();
            out->appendCopy(&length, sizeof32(length));
            out->appendCopy(entry.getRange(0, length), length);
            (*count)++;
        }
    }
}

void
FulvaHost::prepare(const WireFormat::FulvaPrepare::Request* reqHdr,
                   WireFormat::FulvaPrepare::Response* respHdr,
                   Service::Rpc* rpc)
{
    fulva_migration_request request;
    memcpy(&request, &reqHdr->migration, sizeof(request));
    const fulva_tablet& t = request.tablet;
    TabletManager& tablets = master->tabletManager;
    string error;
    int status = FULVA_OK;
    uint64_t bound = 0;
    uint32_t records = 0;
    Buffer recordBytes;

    // A reverse run (a cancel) freezes the tablet this master is the
    // destination of: the cancelled migration's target state says what
    // this copy holds.
    std::shared_ptr<Target> undone;
    TabletManager::TabletState frozenFrom = TabletManager::NORMAL;
    if (request.reverses != 0) {
        undone = findTarget(request.reverses);
        frozenFrom = TabletManager::FULVA_TARGET;
    }
    if (plugin == NULL) {
        status = FULVA_ERROR_UNAVAILABLE;
        error = format("no Fulva plugin on the source %s",
                       self.toString().c_str());
    } else if (request.reverses != 0 && (!undone ||
            memcmp(&undone->request.tablet, &t, sizeof(t)) != 0)) {
        status = FULVA_ERROR_REFUSED;
        error = format("%s is not the destination of migration %lu for "
                "this tablet, so it cannot start its reverse run",
                self.toString().c_str(), request.reverses);
    } else if (!tablets.changeState(t.tableId, t.firstKeyHash, t.lastKeyHash,
            frozenFrom, TabletManager::FULVA_SOURCE)) {
        status = FULVA_ERROR_REFUSED;
        error = format("the source %s does not own exactly tablet "
                "[0x%lx, 0x%lx] of table %lu in the normal state (split the "
                "table at the range's ends first, or it is migrating)",
                self.toString().c_str(), t.firstKeyHash, t.lastKeyHash,
                t.tableId);
    } else {
        // From here writes of the tablet are refused. Wait for every RPC
        // that may still be writing (they started before the state change),
        // then for prepared transactions on the tablet to be decided.
        uint64_t frozenAt = Cycles::rdtsc();
        if (undone) {
            // Reads here are answered by the reverse source's rules from
            // now on: this copy lacks what was not yet moved, and must not
            // answer a miss as the last word.
            SpinLock::Guard guard(lock);
            sources.push_back(Source(request,
                    master->objectManager.objectMap.getNumBuckets(), 0,
                    undone));
            sourceCount = static_cast<int>(sources.size());
        }
        rpc->worker->rpc->activities = Transport::ServerRpc::READ_ACTIVITY;
        LogProtector::wait(context, Transport::ServerRpc::APPEND_ACTIVITY);
        uint64_t waitStart = Cycles::rdtsc();
        uint64_t deadline = waitStart + Cycles::fromSeconds(5.0);
        uint32_t prepared = preparedOperationsIn(t);
        uint32_t undecided = prepared;
        while (prepared > 0 && Cycles::rdtsc() < deadline) {
            usleep(1000);
            prepared = preparedOperationsIn(t);
        }
        if (undecided > 0) {
            // Decisions are taken here while this waits (MasterService's
            // txDecision accepts them for a frozen tablet); one that has
            // removed its operation may still be writing the object.
            LogProtector::wait(context, Transport::ServerRpc::APPEND_ACTIVITY);
            LOG(NOTICE, "Fulva: migration %lu: waited %.1f ms for %u prepared "
                    "transaction operations on the tablet to be decided",
                    request.migrationId,
                    Cycles::toSeconds(Cycles::rdtsc() - waitStart) * 1e3,
                    undecided);
        }
        if (prepared > 0) {
            // The tablet unfreezes below; the destination asks again later
            // (the transactions then finish at this master).
            status = FULVA_ERROR_UNAVAILABLE;
            error = format("%u prepared transaction operations on the tablet "
                    "were not decided within 5 s", prepared);
        } else {
            // The version clock is above every version this master ever
            // assigned (patch 0025 raises it for overwrites too, which
            // stock RAMCloud numbers current + 1), and the drained tablet
            // takes no more writes: no version in it reaches safeVersion,
            // with no scan of the hash table (346 ms for a million objects,
            // all of it with the tablet frozen).
            ObjectManager& om = master->objectManager;
            uint64_t safeVersion = om.segmentManager.safeVersion.load();
            uint64_t highest = safeVersion > 0 ? safeVersion - 1 : 0;
            char message[256] = "";
            status = pluginSourcePrepare(plugin, &request,
                    om.objectMap.getNumBuckets(), safeVersion, highest,
                    &bound, message, sizeof(message));
            error = message;
            // FULVA_FAULTS=completionRecordsNotHandedOver re-introduces the
            // bug the hand-over fixes (FulvaCore's ProtocolFaults of the same
            // name), so a test can show it would catch it.
            const char* faults = getenv("FULVA_FAULTS");
            bool keepRecords = faults != NULL &&
                    strstr(faults, "completionRecordsNotHandedOver") != NULL;
            if (status == FULVA_OK && !keepRecords)
                collectCompletionRecords(t, &recordBytes, &records);
        }
        if (status != FULVA_OK) {
            SpinLock::Guard guard(lock);
            eraseSource(request.migrationId);
            tablets.changeState(t.tableId, t.firstKeyHash, t.lastKeyHash,
                    TabletManager::FULVA_SOURCE, frozenFrom);
        } else {
            Source source(request,
                    master->objectManager.objectMap.getNumBuckets(), bound,
                    undone);
            if (undone) {
                // Drained: no removal lands in the target state any more.
                // The forward run's driver learns of the cancel from its
                // next pull.
                source.tombstoneKeys.reset(
                        new std::vector<std::pair<uint64_t, string>>());
                Fulva::Layout here{source.bucketCount, 1};
                {
                    std::lock_guard<std::mutex> guard(undone->mutex);
                    for (auto& removed : undone->removed) {
                        uint64_t hash = Key::getHash(t.tableId,
                                removed.first.data(), downCast<uint16_t>(
                                removed.first.size()));
                        source.tombstoneKeys->emplace_back(
                                here.bucketOf(hash), removed.first);
                    }
                }
                std::sort(source.tombstoneKeys->begin(),
                          source.tombstoneKeys->end());
                forgetTarget(request.reverses);
                SpinLock::Guard guard(lock);
                cancelled[request.reverses] = undone;
            }
            {
                SpinLock::Guard guard(lock);
                eraseSource(request.migrationId);
                sources.push_back(source);
                sourceCount = static_cast<int>(sources.size());
            }
            LOG(NOTICE, "Fulva: migration %lu: tablet [0x%lx, 0x%lx] of table "
                    "%lu frozen here for %lu for %.1f ms; version bound %lu, %u "
                    "completion records", request.migrationId,
                    t.firstKeyHash, t.lastKeyHash, t.tableId,
                    request.destination,
                    Cycles::toSeconds(Cycles::rdtsc() - frozenAt) * 1e3, bound,
                    records);
        }
    }
    respHdr->fulvaStatus = status;
    respHdr->errorLength = downCast<uint32_t>(error.size());
    respHdr->versionBound = bound;
    respHdr->bucketCount = master->objectManager.objectMap.getNumBuckets();
    respHdr->completionRecords = records;
    rpc->replyPayload->appendCopy(error.c_str(), respHdr->errorLength);
    rpc->replyPayload->append(&recordBytes);
}

void
FulvaHost::pull(const WireFormat::FulvaPull::Request* reqHdr,
                WireFormat::FulvaPull::Response* respHdr,
                Service::Rpc* rpc)
{
    fulva_tablet t;
    memcpy(&t, &reqHdr->tablet, sizeof(t));
    TabletManager::Tablet tablet;
    if (reqHdr->migrationId != 0 && (!master->tabletManager.getTablet(
            t.tableId, t.firstKeyHash, t.lastKeyHash, &tablet) ||
            tablet.state != TabletManager::FULVA_SOURCE)) {
        respHdr->common.status = STATUS_UNKNOWN_TABLET;
        return;
    }
    ObjectManager& om = master->objectManager;
    uint64_t end = std::min(reqHdr->endBucket, om.objectMap.getNumBuckets());
    // An inventory counts and carries nothing; it answers after this many
    // buckets so that a large table does not hold one worker throughout.
    const bool inventory = reqHdr->migrationId == 0;
    const uint64_t inventoryBuckets = 1 << 16;
    // A reverse run moves only what the old source lacks: the objects
    // written here (at or above the cancelled run's floor; the rest are
    // copies of the old source's own) and the removals made here.
    Source source;
    uint64_t writtenFrom = 0;
    if (!inventory && findSource(reqHdr->migrationId, &source) &&
            source.undoes)
        writtenFrom = source.undoes->versionFloor;
    struct Collect {
        ObjectManager* om;
        fulva_tablet tablet;
        Buffer* reply;
        uint32_t objects;
        uint64_t bytes;
        uint64_t writtenFrom;
    } collect = { &om, t, inventory ? NULL : rpc->replyPayload, 0, 0,
                  writtenFrom };
    uint64_t bucket = reqHdr->firstBucket;
    uint32_t start = rpc->replyPayload->size();
    while (bucket < end) {
        {
            ObjectManager::HashTableBucketLock bucketLock(om, bucket);
            om.objectMap.forEachInBucket([](uint64_t reference, void* cookie) {
                Collect* c = static_cast<Collect*>(cookie);
                Buffer buffer;
                if (c->om->log.getEntry(Log::Reference(reference), buffer) !=
                        LOG_ENTRY_TYPE_OBJ)
                    return;
                Object object(buffer);
                KeyHash hash = object.getPKHash();
                if (object.getTableId() != c->tablet.tableId ||
                        hash < c->tablet.firstKeyHash ||
                        hash > c->tablet.lastKeyHash ||
                        object.getVersion() < c->writtenFrom)
                    return;
                if (c->reply != NULL)
                    appendObject(object, c->reply);
                c->objects++;
                c->bytes += object.getKeysAndValueLength();
            }, &collect, bucket);
        }
        bucket++;
        if (inventory ? bucket - reqHdr->firstBucket >= inventoryBuckets
                      : rpc->replyPayload->size() - start >= reqHdr->maxBytes)
            break;
    }
    if (source.tombstoneKeys)
        appendTombstones(source, reqHdr->firstBucket, bucket,
                         rpc->replyPayload, &collect.objects);
    respHdr->resumeBucket = bucket < end ? bucket : reqHdr->endBucket;
    respHdr->objects = collect.objects;
    respHdr->bytes = collect.bytes;
}

void
FulvaHost::priorityPull(const WireFormat::FulvaPriorityPull::Request* reqHdr,
                        WireFormat::FulvaPriorityPull::Response* respHdr,
                        Service::Rpc* rpc)
{
    const void* keyBytes = keyOf(reqHdr, respHdr, rpc);
    if (keyBytes == NULL)
        return;
    Key key(reqHdr->tableId, keyBytes, reqHdr->keyLength);
    ObjectManager& om = master->objectManager;
    ObjectManager::HashTableBucketLock bucketLock(om, key);
    TabletManager::Tablet tablet;
    if (!master->tabletManager.getTablet(key, &tablet) ||
            tablet.state != TabletManager::FULVA_SOURCE) {
        respHdr->common.status = STATUS_UNKNOWN_TABLET;
        return;
    }
    LogEntryType type;
    Buffer buffer;
    respHdr->found = 0;
    if (om.lookup(bucketLock, key, type, buffer) &&
            type == LOG_ENTRY_TYPE_OBJ) {
        Object object(buffer);
        appendObject(object, rpc->replyPayload);
        respHdr->found = 1;
        return;
    }
    // A reverse run's source: a key removed here is sent as its removal.
    Source source;
    if (findSource(reqHdr->migrationId, &source) && source.undoes) {
        std::lock_guard<std::mutex> guard(source.undoes->mutex);
        auto removed = source.undoes->removed.find(keyString(key));
        if (removed != source.undoes->removed.end()) {
            appendTombstone(removed->first, removed->second,
                            rpc->replyPayload);
            respHdr->found = 1;
        }
    }
}

/// Appends the removals of a reverse run's source whose keys lie in
/// buckets [firstBucket, endBucket) here, as tombstones.
void
FulvaHost::appendTombstones(const Source& source, uint64_t firstBucket,
                            uint64_t endBucket, Buffer* reply,
                            uint32_t* count)
{
    auto& keys = *source.tombstoneKeys;
    auto it = std::lower_bound(keys.begin(), keys.end(),
            std::make_pair(firstBucket, string()));
    std::lock_guard<std::mutex> guard(source.undoes->mutex);
    for (; it != keys.end() && it->first < endBucket; ++it) {
        auto removed = source.undoes->removed.find(it->second);
        if (removed == source.undoes->removed.end())
            continue;
        appendTombstone(removed->first, removed->second, reply);
        (*count)++;
    }
}

void
FulvaHost::drop(const WireFormat::FulvaDrop::Request* reqHdr,
                WireFormat::FulvaDrop::Response* respHdr,
                Service::Rpc* rpc)
{
    fulva_tablet t;
    memcpy(&t, &reqHdr->tablet, sizeof(t));
    TabletManager& tablets = master->tabletManager;
    if (reqHdr->release) {
        if (tablets.changeState(t.tableId, t.firstKeyHash, t.lastKeyHash,
                TabletManager::FULVA_SOURCE, TabletManager::NORMAL))
            LOG(NOTICE, "Fulva: migration %lu cancelled before ownership "
                    "moved: tablet [0x%lx, 0x%lx] of table %lu serves here "
                    "again", reqHdr->migrationId, t.firstKeyHash,
                    t.lastKeyHash, t.tableId);
    } else {
        TabletManager::Tablet tablet;
        if (tablets.getTablet(t.tableId, t.firstKeyHash, t.lastKeyHash,
                &tablet) && tablet.state == TabletManager::FULVA_SOURCE) {
            tablets.deleteTablet(t.tableId, t.firstKeyHash, t.lastKeyHash);
            TableStats::deleteKeyHashRange(&master->masterTableMetadata,
                    t.tableId, t.firstKeyHash, t.lastKeyHash);
            // Worker thread: these scan the whole hash table.
            removeOrphanedObjectsPaced();
            master->transactionManager.removeOrphanedOps();
            LOG(NOTICE, "Fulva: migration %lu done: dropped tablet "
                    "[0x%lx, 0x%lx] of table %lu", reqHdr->migrationId,
                    t.firstKeyHash, t.lastKeyHash, t.tableId);
        }
    }
    {
        SpinLock::Guard guard(lock);
        Source* source = NULL;
        for (Source& candidate : sources)
            if (candidate.request.migrationId == reqHdr->migrationId)
                source = &candidate;
        // The cancelled run's state goes; its id stays, so that a driver
        // still pausing (a throttle) learns of the cancel when it wakes.
        if (source != NULL && source->request.reverses != 0)
            cancelled[source->request.reverses].reset();
        eraseSource(reqHdr->migrationId);
    }
    if (plugin != NULL)
        pluginSourceEnd(plugin, reqHdr->migrationId);
}

/// Forgets a migration out of this master; the caller holds `lock`.
void
FulvaHost::eraseSource(uint64_t migrationId)
{
    sources.erase(std::remove_if(sources.begin(), sources.end(),
            [migrationId](const Source& source) {
                return source.request.migrationId == migrationId;
            }), sources.end());
    sourceCount = static_cast<int>(sources.size());
}

/**
 * Crash recovery asks this master to recover a tablet it holds frozen as
 * the source of a migration: the migration's destination crashed, and the
 * coordinator (which maps the tablet to it) recovers its log here. The
 * frozen copy is exactly what was not yet moved, and the destination's log
 * holds everything written there since it took ownership (with versions
 * above the bound) and its tombstones, so replaying that log on top of the
 * copy, higher version winning as recovery always does, rebuilds the
 * tablet as the clients last wrote it. The tablet becomes an ordinary
 * recovering tablet; the migration is over for this master.
 *
 * \return
 *      False when no tablet of exactly this range is frozen here as a
 *      source: the caller's ordinary overlap handling applies.
 */
bool
FulvaHost::recoverIntoSource(uint64_t tableId, uint64_t firstKeyHash,
                             uint64_t lastKeyHash)
{
    if (!master->tabletManager.changeState(tableId, firstKeyHash, lastKeyHash,
            TabletManager::FULVA_SOURCE, TabletManager::NOT_READY))
        return false;
    uint64_t migrationId = 0;
    {
        SpinLock::Guard guard(lock);
        for (const Source& source : sources) {
            const fulva_tablet& t = source.request.tablet;
            if (t.tableId == tableId && t.firstKeyHash == firstKeyHash &&
                    t.lastKeyHash == lastKeyHash)
                migrationId = source.request.migrationId;
        }
        sources.erase(std::remove_if(sources.begin(), sources.end(),
                [migrationId](const Source& source) {
                    return source.request.migrationId == migrationId;
                }), sources.end());
        sourceCount = static_cast<int>(sources.size());
    }
    LOG(NOTICE, "Fulva: migration %lu: its destination crashed; recovering "
            "its log into the frozen copy of tablet [0x%lx, 0x%lx] of table "
            "%lu here (higher versions win)", migrationId, firstKeyHash,
            lastKeyHash, tableId);
    if (plugin != NULL && migrationId != 0)
        pluginSourceEnd(plugin, migrationId);
    return true;
}

/**
 * Crash recovery asks this master to recover a tablet it owns as the
 * destination of a migration: the migration's source crashed, and the
 * coordinator hands the source's entries of the tablet here (the records
 * name the migration; see FulvaRecovery.h). What is here is the latest of
 * every key it holds (versions at or above the floor, copies pulled from
 * the source, removals), and the source's log holds the rest as it was
 * frozen, so replaying that log under what is here, higher version
 * winning and a key removed here staying removed (removedSince), makes
 * the tablet whole. The tablet is not ready while the replay runs (clients
 * retry) and ordinary once recovery ends; the migration cannot go on.
 *
 * 
eturn
 *      False when no tablet of exactly this range migrates here: the
 *      caller's ordinary overlap handling applies.
 */
bool
FulvaHost::recoverIntoTarget(uint64_t tableId, uint64_t firstKeyHash,
                             uint64_t lastKeyHash)
{
    std::shared_ptr<Target> target = findTarget(tableId, firstKeyHash);
    if (!target || target->request.tablet.firstKeyHash != firstKeyHash ||
            target->request.tablet.lastKeyHash != lastKeyHash)
        return false;
    if (!master->tabletManager.changeState(tableId, firstKeyHash, lastKeyHash,
            TabletManager::FULVA_TARGET, TabletManager::NOT_READY))
        return false;
    LOG(NOTICE, "Fulva: migration %lu: its source crashed; recovering the "
            "source's entries of tablet [0x%lx, 0x%lx] of table %lu here, "
            "under what this master holds (higher versions win, removals "
            "here stand)", target->request.migrationId, firstKeyHash,
            lastKeyHash, tableId);
    return true;
}

/// A recovery into a migration's destination failed: the tablet goes back
/// to the migrating state (the coordinator retries the recovery later).
bool
FulvaHost::abandonRecoveryIntoTarget(uint64_t tableId, uint64_t firstKeyHash,
                                     uint64_t lastKeyHash)
{
    std::shared_ptr<Target> target = findTarget(tableId, firstKeyHash);
    return target && master->tabletManager.changeState(tableId, firstKeyHash,
            lastKeyHash, TabletManager::NOT_READY,
            TabletManager::FULVA_TARGET);
}

/// Whether a migration into this master removed the key at `version` or
/// later (a replayed copy of that version or older must not come back).
bool
FulvaHost::removedSince(Key& key, uint64_t version)
{
    std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                key.getHash());
    if (!target)
        return false;
    std::lock_guard<std::mutex> guard(target->mutex);
    auto removed = target->removed.find(keyString(key));
    return removed != target->removed.end() && removed->second >= version;
}

/**
 * ObjectManager::removeOrphanedObjects with pauses: the same bucket-by-
 * bucket removal of objects no tablet here covers any more, but it sleeps
 * briefly after every few thousand buckets. Run flat out, its tablet lookup
 * per object (TabletManager's spin lock, which every client request also
 * takes) and its CPU starved the masters' dispatch threads of a 2-core host
 * for 80 ms after a million-object tablet left (`rc-migrate bench`: the
 * longest gap of a Fulva migration, at its very end). The drop is the
 * migration's last step and is not waited for by clients: a slower one
 * costs nobody.
 */
void
FulvaHost::removeOrphanedObjectsPaced()
{
    ObjectManager& om = master->objectManager;
    uint64_t buckets = om.objectMap.getNumBuckets();
    for (uint64_t bucket = 0; bucket < buckets; bucket++) {
        {
            ObjectManager::HashTableBucketLock lock(om, bucket);
            ObjectManager::CleanupParameters params = { &om, &lock };
            om.objectMap.forEachInBucket(
                    ObjectManager::removeIfOrphanedObject, &params, bucket);
        }
        if (bucket % DROP_BUCKETS_PER_PAUSE == DROP_BUCKETS_PER_PAUSE - 1)
            usleep(DROP_PAUSE_MICROS);
    }
}

bool
FulvaHost::findSource(uint64_t migrationId, Source* source)
{
    SpinLock::Guard guard(lock);
    for (const Source& candidate : sources) {
        if (candidate.request.migrationId == migrationId) {
            *source = candidate;
            return true;
        }
    }
    return false;
}

bool
FulvaHost::findSource(uint64_t tableId, uint64_t keyHash, Source* source)
{
    SpinLock::Guard guard(lock);
    for (const Source& candidate : sources) {
        const fulva_tablet& t = candidate.request.tablet;
        if (t.tableId == tableId && keyHash >= t.firstKeyHash &&
                keyHash <= t.lastKeyHash) {
            *source = candidate;
            return true;
        }
    }
    return false;
}

// MARK: the opt-in read of protocol clients

namespace {

/// FulvaCore's strategy codes in a tag.
uint8_t
strategyCode(uint32_t strategy)
{
    return strategy == FULVA_STRATEGY_ROCKSTEADY ? 2 : 1;
}

} // namespace

/// The source's tag: the client learns who moves what from it (once), and
/// that this answer comes from a frozen copy.
string
FulvaHost::tagFor(const Source& source, uint64_t hintMigration)
{
    const fulva_migration_request& r = source.request;
    // Only reads of the frozen copy carry the source's tag.
    PerfStats::threadStats.fulvaSourceReads++;
    Fulva::Tag tag = {};
    tag.role = Fulva::Role::SOURCE;
    tag.migration = r.migrationId;
    // The identity needs the layout, which needs the partition count the
    // destination chose (it sends it in Prepare).
    tag.withIdentity = hintMigration != r.migrationId && r.partitions > 0;
    tag.source = r.source;
    tag.destination = r.destination;
    tag.strategyCode = strategyCode(r.strategy);
    tag.tableId = r.tablet.tableId;
    tag.firstKeyHash = r.tablet.firstKeyHash;
    tag.lastKeyHash = r.tablet.lastKeyHash;
    tag.layout = Fulva::Layout{source.bucketCount,
            static_cast<uint32_t>(std::min<uint64_t>(r.partitions,
                                                     source.bucketCount))};
    return Fulva::encodeTag(tag);
}

/// The destination's tag: the identity for a client new to the migration,
/// and every watermark when the client's epoch is behind.
string
FulvaHost::tagFor(Target* target, uint64_t hintMigration, uint32_t hintEpoch)
{
    const fulva_migration_request& r = target->request;
    bool newClient = hintMigration != r.migrationId;
    Fulva::Tag tag = {};
    tag.role = Fulva::Role::DESTINATION;
    tag.migration = r.migrationId;
    // The epoch first, then the watermarks: those sent are at least as new
    // as the epoch says.
    tag.epoch = target->epoch.load(std::memory_order_acquire);
    tag.withIdentity = newClient || hintEpoch == 0;
    tag.source = r.source;
    tag.destination = r.destination;
    tag.strategyCode = strategyCode(r.strategy);
    tag.tableId = r.tablet.tableId;
    tag.firstKeyHash = r.tablet.firstKeyHash;
    tag.lastKeyHash = r.tablet.lastKeyHash;
    tag.layout = target->layout;
    uint64_t marks[MAX_TAG_PARTITIONS];
    if (newClient || hintEpoch < tag.epoch) {
        tag.watermarkCount = std::min<uint32_t>(target->layout.partitions,
                                                MAX_TAG_PARTITIONS);
        for (uint32_t p = 0; p < tag.watermarkCount; p++)
            marks[p] = target->watermarks[p].load(std::memory_order_acquire);
        tag.watermarks = marks;
    }
    return Fulva::encodeTag(tag);
}

/**
 * A stock READ of a key of a migrating tablet: the reply carries the tag
 * after the value (a client without Fulva's shim ignores it; libramcloud
 * strips it), so the client learns of the migration and never takes a
 * source's frozen copy on its own. Called only while migrating().
 */
void
FulvaHost::tagRead(Key& key, Service::Rpc* rpc)
{
    TabletManager::Tablet tablet;
    if (!master->tabletManager.getTablet(key, &tablet))
        return;
    string tag;
    Source source;
    // A rocksteady migration is invisible to clients: its source refuses
    // reads and its destination answers everything (fetching first), so
    // its replies carry no tag and clients follow the tablet map.
    if (tablet.state == TabletManager::FULVA_TARGET) {
        std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                    key.getHash());
        if (target &&
                target->request.strategy != FULVA_STRATEGY_ROCKSTEADY)
            tag = tagFor(target.get(), 0, 0);
    } else if (tablet.state == TabletManager::FULVA_SOURCE &&
            findSource(key.getTableId(), key.getHash(), &source) &&
            source.request.strategy != FULVA_STRATEGY_ROCKSTEADY) {
        tag = tagFor(source, 0);
    }
    rpc->replyPayload->appendCopy(tag.data(), downCast<uint32_t>(tag.size()));
}

/// Rocksteady locks the source: every read of the tablet there is refused
/// ("unknown tablet"), and clients find the destination in the tablet map.
bool
FulvaHost::lockedHere(Key& key)
{
    TabletManager::Tablet tablet;
    Source source;
    return master->tabletManager.getTablet(key, &tablet) &&
            tablet.state == TabletManager::FULVA_SOURCE &&
            findSource(key.getTableId(), key.getHash(), &source) &&
            source.request.strategy == FULVA_STRATEGY_ROCKSTEADY;
}

/// Multi-reads and reads of keys and value (transactions) are not answered
/// from a frozen copy: their replies have no room for a tag, so the client
/// is sent, by "unknown tablet", to the tablet's new owner.
bool
FulvaHost::frozenHere(Key& key)
{
    TabletManager::Tablet tablet;
    return master->tabletManager.getTablet(key, &tablet) &&
            tablet.state == TabletManager::FULVA_SOURCE;
}

/**
 * FULVA_TRANSFER_PROBE: how fast this master can receive bulk data from
 * another over the cluster's transport. It keeps `outstanding` ECHO
 * requests in flight, each answered with chunkBytes from the source's
 * memory, until `bytes` have arrived: the same direction, reply size and
 * concurrency as a migration's pulls, without the hash-table walk at the
 * source or the replay here, so a migration's rate can be read as a
 * fraction of what the transport itself gives.
 */
void
FulvaHost::transferProbe(const WireFormat::FulvaTransferProbe::Request* reqHdr,
                         WireFormat::FulvaTransferProbe::Response* respHdr,
                         Service::Rpc* rpc)
{
    string error;
    respHdr->fulvaStatus = FULVA_OK;
    respHdr->bytes = 0;
    respHdr->nanos = 0;
    ServerId source(reqHdr->source);
    if (reqHdr->chunkBytes == 0 || reqHdr->chunkBytes > (1u << 20) ||
            reqHdr->outstanding == 0 || reqHdr->outstanding > 64) {
        respHdr->fulvaStatus = FULVA_ERROR_INVALID_ARGUMENT;
        error = "chunk bytes must be in 1...1048576 and outstanding "
                "requests in 1...64";
    } else if (source == self ||
            !context->serverList->isUp(source)) {
        respHdr->fulvaStatus = FULVA_ERROR_INVALID_ARGUMENT;
        error = format("server %s is %s", source.toString().c_str(),
                source == self ? "this master"
                                           : "not up in the cluster");
    } else {
        std::vector<std::unique_ptr<FulvaEchoRpc>> inFlight;
        uint64_t requested = 0, received = 0;
        uint64_t start = Cycles::rdtsc();
        try {
            while (received < reqHdr->bytes) {
                while (inFlight.size() < reqHdr->outstanding &&
                        requested < reqHdr->bytes) {
                    uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(
                            reqHdr->chunkBytes, reqHdr->bytes - requested));
                    inFlight.emplace_back(
                            new FulvaEchoRpc(context, source, chunk));
                    requested += chunk;
                }
                // The oldest first: replies of equal size arrive in order.
                if (!waitPolitely(inFlight.front().get(),
                        RPC_TIMEOUT_SECONDS)) {
                    throw Exception(HERE, "no echo reply in time");
                }
                inFlight.front()->wait();
                received += inFlight.front()->replyBytes() -
                        sizeof32(WireFormat::Echo::Response);
                inFlight.erase(inFlight.begin());
            }
            respHdr->nanos = Cycles::toNanoseconds(Cycles::rdtsc() - start);
            respHdr->bytes = received;
        } catch (Exception& e) {
            for (auto& echo : inFlight)
                echo->cancel();
            respHdr->fulvaStatus = FULVA_ERROR_UNAVAILABLE;
            error = format("transfer from server %s failed after %lu bytes: "
                    "%s", source.toString().c_str(), received,
                    e.message.c_str());
        }
    }
    respHdr->errorLength = downCast<uint32_t>(error.size());
    rpc->replyPayload->appendCopy(error.data(), respHdr->errorLength);
}

/**
 * FULVA_READ: what this master knows of one key, with the migration tag a
 * protocol client needs. Unlike a stock READ it never fetches: at the
 * destination a key that is neither here nor covered by a watermark is
 * answered "not yet moved", and the client reads the source at once.
 */
void
FulvaHost::read(const WireFormat::FulvaRead::Request* reqHdr,
                WireFormat::FulvaRead::Response* respHdr,
                Service::Rpc* rpc)
{
    const void* keyBytes = keyOf(reqHdr, respHdr, rpc);
    if (keyBytes == NULL)
        return;
    Key key(reqHdr->tableId, keyBytes, reqHdr->keyLength);
    std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                key.getHash());
    ObjectManager& om = master->objectManager;
    Fulva::Entry local = Fulva::Entry::NONE;
    uint64_t version = 0;
    bool covered = false;
    bool fetched = false;
    uint64_t trustFrom = 0;
    TabletManager::Tablet tablet;
    uint32_t valueLength = 0;
    {
        ObjectManager::HashTableBucketLock bucketLock(om, key);
        if (!master->tabletManager.getTablet(key, &tablet)) {
            retryIfArriving(key);
            respHdr->common.status = STATUS_UNKNOWN_TABLET;
            return;
        }
        if (tablet.state == TabletManager::LOCKED_FOR_MIGRATION) {
            respHdr->common.status = STATUS_RETRY;
            return;
        }
        if (tablet.state != TabletManager::NORMAL &&
                tablet.state != TabletManager::FULVA_SOURCE &&
                tablet.state != TabletManager::FULVA_TARGET) {
            respHdr->common.status = STATUS_UNKNOWN_TABLET;
            return;
        }
        if (tablet.state == TabletManager::FULVA_SOURCE && lockedHere(key)) {
            respHdr->common.status = STATUS_UNKNOWN_TABLET;
            return;
        }
        bool migratingHere = tablet.state == TabletManager::FULVA_TARGET &&
                target;
        if (migratingHere && target->preparing.load(
                std::memory_order_acquire)) {
            respHdr->common.status = STATUS_RETRY;
            return;
        }
        // The watermark before the lookup, under the bucket lock that replay
        // also takes: a racing replay cannot turn a miss into "absent".
        if (migratingHere) {
            covered = target->isCovered(key.getHash());
            trustFrom = target->trustFrom;
        }
        LogEntryType type;
        Buffer buffer;
        if (om.lookup(bucketLock, key, type, buffer, &version) &&
                type == LOG_ENTRY_TYPE_OBJ) {
            local = Fulva::Entry::OBJECT;
            // By reference, as a stock READ: the worker's RPC keeps the log
            // cleaner off the entry until the reply is sent.
            Object object(buffer);
            valueLength = object.getValueLength();
            object.appendValueToBuffer(rpc->replyPayload);
        } else if (migratingHere) {
            // Removals during the move are kept beside the hash table, and
            // noted under this bucket lock.
            std::lock_guard<std::mutex> guard(target->mutex);
            string name = keyString(key);
            auto removed = target->removed.find(name);
            if (removed != target->removed.end()) {
                local = Fulva::Entry::TOMBSTONE;
                version = removed->second;
            }
            fetched = target->fetched.count(name) != 0;
        }
        if (migratingHere && local == Fulva::Entry::OBJECT &&
                version < trustFrom) {
            std::lock_guard<std::mutex> guard(target->mutex);
            fetched = target->fetched.count(keyString(key)) != 0;
        }
        Source source;
        if (!migratingHere && tablet.state == TabletManager::FULVA_SOURCE &&
                findSource(key.getTableId(), key.getHash(), &source) &&
                source.undoes) {
            // A reverse run's source: what the cancelled run knew. Its
            // target state is frozen with the tablet.
            Target* undone = source.undoes.get();
            covered = undone->isCovered(key.getHash());
            std::lock_guard<std::mutex> guard(undone->mutex);
            string name = keyString(key);
            if (local == Fulva::Entry::NONE) {
                auto removed = undone->removed.find(name);
                if (removed != undone->removed.end()) {
                    local = Fulva::Entry::TOMBSTONE;
                    version = removed->second;
                }
            }
            fetched = undone->fetched.count(name) != 0;
        } else if (!migratingHere) {
            covered = true;     // this master's copy is the whole truth
        }
    }
    // A reverse run's destination holds its old copy: an entry below the
    // cancelled run's bound may have been overwritten or removed at the
    // other server, and is reported as that old copy.
    Fulva::ReadAnswer answer = trustFrom != 0
            ? Fulva::answerReverseRead(local, version, trustFrom, covered,
                                       fetched)
            : Fulva::answerRead(local, Fulva::knowsKey(local, covered,
                                                        fetched));
    switch (answer) {
    case Fulva::ReadAnswer::NOT_YET_MOVED_OVER_OBJECT:
        respHdr->answer = FULVA_ANSWER_NOT_YET_MOVED_OVER_OBJECT;
        break;
    case Fulva::ReadAnswer::NOT_YET_MOVED_OVER_ABSENT:
        respHdr->answer = FULVA_ANSWER_NOT_YET_MOVED_OVER_ABSENT;
        version = 0;
        break;
    case Fulva::ReadAnswer::OBJECT:
        respHdr->answer = FULVA_ANSWER_OBJECT;
        break;
    case Fulva::ReadAnswer::TOMBSTONE:
        respHdr->answer = FULVA_ANSWER_TOMBSTONE;
        break;
    case Fulva::ReadAnswer::ABSENT:
        respHdr->answer = FULVA_ANSWER_ABSENT;
        version = 0;
        break;
    case Fulva::ReadAnswer::NOT_YET_MOVED:
    default:
        respHdr->answer = FULVA_ANSWER_NOT_YET_MOVED;
        version = 0;
        break;
    }
    respHdr->version = version;
    respHdr->valueLength = valueLength;

    string tag;
    Source source;
    if (tablet.state == TabletManager::FULVA_TARGET && target) {
        tag = tagFor(target.get(), reqHdr->hintMigration, reqHdr->hintEpoch);
    } else if (tablet.state == TabletManager::FULVA_SOURCE &&
            findSource(key.getTableId(), key.getHash(), &source)) {
        tag = tagFor(source, reqHdr->hintMigration);
    } else if (reqHdr->hintMigration != 0) {
        // The client believes the tablet migrates; here it is an ordinary
        // tablet: that migration is over.
        Fulva::Tag ended = {};
        ended.role = Fulva::Role::ENDED;
        ended.migration = reqHdr->hintMigration;
        tag = Fulva::encodeTag(ended);
    }
    respHdr->tagLength = downCast<uint16_t>(tag.size());
    rpc->replyPayload->appendCopy(tag.data(), respHdr->tagLength);
}

// MARK: destination: replay and per-request checks

/**
 * Installs one object from the source unless the destination already has
 * the key at a version at least as high, or removed it at a version at
 * least as high (higher version wins). Returns whether it was installed.
 */
bool
FulvaHost::replayObject(Target* target, Object& object)
{
    ObjectManager& om = master->objectManager;
    KeyLength keyLength;
    const void* keyBytes = object.getKey(0, &keyLength);
    Key key(object.getTableId(), keyBytes, keyLength);
    ObjectManager::HashTableBucketLock bucketLock(om, key);
    TabletManager::Tablet tablet;
    if (!master->tabletManager.getTablet(key, &tablet) ||
            tablet.state != TabletManager::FULVA_TARGET)
        return false;
    LogEntryType currentType = LOG_ENTRY_TYPE_INVALID;
    Buffer current;
    uint64_t currentVersion = 0;
    Log::Reference currentReference;
    HashTable::Candidates candidates;
    bool found = om.lookup(bucketLock, key, currentType, current,
                           &currentVersion, &currentReference, &candidates);
    Fulva::Entry existing = !found ? Fulva::Entry::NONE :
            currentType == LOG_ENTRY_TYPE_OBJ ? Fulva::Entry::OBJECT :
            Fulva::Entry::TOMBSTONE;
    if (!Fulva::replayReplaces(Fulva::Entry::OBJECT, object.getVersion(),
                               existing, currentVersion))
        return false;
    {
        std::lock_guard<std::mutex> guard(target->mutex);
        auto removed = target->removed.find(keyString(key));
        if (removed != target->removed.end() &&
                !Fulva::replayReplaces(Fulva::Entry::OBJECT,
                        object.getVersion(), Fulva::Entry::TOMBSTONE,
                        removed->second))
            return false;
    }

    // As writeObject does: the new object and, for a superseded one, its
    // tombstone, in one atomic append.
    Log::AppendVector appends[2];
    object.assembleForLog(appends[0].buffer);
    appends[0].type = LOG_ENTRY_TYPE_OBJ;
    Tub<ObjectTombstone> tombstone;
    if (existing == Fulva::Entry::OBJECT) {
        Object old(current);
        tombstone.construct(old, om.log.getSegmentId(currentReference),
                            WallTime::secondsTimestamp());
        tombstone->assembleForLog(appends[1].buffer);
        appends[1].type = LOG_ENTRY_TYPE_OBJTOMB;
    }
    if (!om.log.append(appends, tombstone ? 2 : 1))
        throw RetryException(HERE, 1000, 2000, "Must wait for cleaner");
    if (found) {
        candidates.setReference(appends[0].reference.toInteger());
        om.log.free(currentReference);
    } else {
        om.objectMap.insert(key.getHash(), appends[0].reference.toInteger());
    }
    return true;
}

/**
 * A reverse run's removal: the key was removed at the other server at
 * `version`. The old copy here goes (with a tombstone in the log, as a
 * remove writes) unless a write here is newer; the removal is noted so
 * that reads and writes here know of it. Returns whether a copy went.
 */
bool
FulvaHost::replayTombstone(Target* target, Key& key, uint64_t version)
{
    ObjectManager& om = master->objectManager;
    ObjectManager::HashTableBucketLock bucketLock(om, key);
    TabletManager::Tablet tablet;
    if (!master->tabletManager.getTablet(key, &tablet) ||
            tablet.state != TabletManager::FULVA_TARGET)
        return false;
    {
        std::lock_guard<std::mutex> guard(target->mutex);
        uint64_t& known = target->removed[keyString(key)];
        known = std::max(known, version);
    }
    LogEntryType type;
    Buffer buffer;
    uint64_t currentVersion = 0;
    Log::Reference reference;
    if (!om.lookup(bucketLock, key, type, buffer, &currentVersion,
                   &reference) || type != LOG_ENTRY_TYPE_OBJ ||
            !Fulva::replayReplaces(Fulva::Entry::TOMBSTONE, version,
                                   Fulva::Entry::OBJECT, currentVersion))
        return false;
    Object object(buffer);
    ObjectTombstone tombstone(object, om.log.getSegmentId(reference),
                              WallTime::secondsTimestamp());
    Buffer entry;
    tombstone.assembleForLog(entry);
    if (!om.log.append(LOG_ENTRY_TYPE_OBJTOMB, entry))
        throw RetryException(HERE, 1000, 2000, "Must wait for cleaner");
    om.log.free(reference);
    om.remove(bucketLock, key);
    return true;
}

/// Replays one entry of a pull or priority-pull reply: its header is at
/// `header`, its bytes at `offset` of `response`.
void
FulvaHost::replayPulled(Target* target, uint64_t tableId, Buffer* response,
                        uint32_t offset,
                        const WireFormat::FulvaObject* header)
{
    if (header->tombstone) {
        const void* bytes = response->getRange(offset,
                                               header->keysAndValueLength);
        if (bytes == NULL)
            throw FatalError(HERE, "short pull reply");
        Key key(tableId, bytes,
                downCast<uint16_t>(header->keysAndValueLength));
        replayTombstone(target, key, header->version);
        return;
    }
    Object object(tableId, header->version, header->timestamp, *response,
                  offset, header->keysAndValueLength);
    replayObject(target, object);
}

/**
 * Before a request on a key of a tablet migrating here: the shared rules
 * (FulvaRules.h, FulvaCore's DestinationMigration) say whether this master
 * knows the key's state (below its watermark, an entry here, or fetched or
 * removed here) and, if not, whether the request must fetch the key from
 * the source first (a priority pull), which this does. Blocks the calling
 * worker thread for one round trip; called without any bucket lock held.
 *
 * Reads come from clients that cannot yet read from both servers, so they
 * are admitted by the rocksteady rule rather than answered "not yet moved":
 * under Fulva the key is fetched and the read answered; under the
 * rocksteady strategy the read is answered "retry" once the key is here.
 */
void
FulvaHost::fetchIfUnknown(Key& key, Fulva::RequestKind kind)
{
    std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                key.getHash());
    if (!target)
        return;
    if (target->preparing.load(std::memory_order_acquire))
        throw RetryException(HERE, 100, 1000,
                "Fulva: a cancel is moving the tablet back here");
    ObjectManager& om = master->objectManager;
    bool covered;
    Fulva::Entry local = Fulva::Entry::NONE;
    uint64_t version = 0;
    {
        ObjectManager::HashTableBucketLock bucketLock(om, key);
        TabletManager::Tablet tablet;
        if (!master->tabletManager.getTablet(key, &tablet) ||
                tablet.state != TabletManager::FULVA_TARGET)
            return;
        // The watermark before the lookup, under the bucket lock that replay
        // also takes: a racing replay cannot turn a miss into "known".
        covered = target->isCovered(key.getHash());
        LogEntryType type;
        Buffer buffer;
        if (om.lookup(bucketLock, key, type, buffer, &version))
            local = type == LOG_ENTRY_TYPE_OBJ ? Fulva::Entry::OBJECT
                                               : Fulva::Entry::TOMBSTONE;
    }
    // A reverse run's old copy (below the cancelled run's bound) is not
    // the key's latest state (see read()).
    if (!Fulva::trusts(local, version, target->trustFrom))
        local = Fulva::Entry::NONE;
    string name = keyString(key);
    bool known = Fulva::knowsKey(local, covered, target->knows(name));
    Fulva::Admission admission = Fulva::admit(kind, Fulva::Phase::MOVING,
            kind == Fulva::RequestKind::READ, known);
    if (admission != Fulva::Admission::PRIORITY_FETCH_FIRST &&
            admission != Fulva::Admission::RETRY_AFTER_PRIORITY_FETCH)
        return;
    FulvaPriorityPullRpc rpc(context, ServerId(target->request.source),
                             target->request.migrationId, key);
    rpc.wait();
    target->priorityPulls++;
    PerfStats::threadStats.fulvaPriorityPulls++;
    Buffer* reply = rpc.reply();
    const WireFormat::FulvaPriorityPull::Response* respHdr =
            reply->getStart<WireFormat::FulvaPriorityPull::Response>();
    if (respHdr->found) {
        uint32_t offset = sizeof32(*respHdr);
        const WireFormat::FulvaObject* header =
                reply->getOffset<WireFormat::FulvaObject>(offset);
        if (header == NULL)
            throw FatalError(HERE, "short priority-pull reply");
        offset += sizeof32(*header);
        replayPulled(target.get(), key.getTableId(), reply, offset, header);
        om.syncChanges();
        if (target->trustFrom != 0) {
            // The old copy here may equal what came (and stay): the key
            // is settled all the same.
            std::lock_guard<std::mutex> guard(target->mutex);
            target->fetched.insert(name);
        }
    } else {
        std::lock_guard<std::mutex> guard(target->mutex);
        target->fetched.insert(name);
    }
    // Rocksteady answers a read of a key that had not arrived with "retry"
    // once the key is here: the client's extra round trip that Fulva's
    // dual reads avoid (RAMCloud's client retries after the delay).
    if (admission == Fulva::Admission::RETRY_AFTER_PRIORITY_FETCH &&
            target->request.strategy == FULVA_STRATEGY_ROCKSTEADY)
        throw RetryException(HERE, 0, 100,
                "rocksteady: the key was fetched from the source; retry");
}

/**
 * The version a write, or a transaction's prepare, gives a key of a tablet
 * migrating here: above every version the key had at the source (the
 * migration's version floor), and above a removal made here during the
 * move (FulvaRules.h). `proposedVersion` is what stock RAMCloud would give.
 */
uint64_t
FulvaHost::versionForWrite(Key& key, uint64_t currentVersion,
                           uint64_t proposedVersion)
{
    std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                key.getHash());
    if (!target)
        return proposedVersion;
    if (target->preparing.load(std::memory_order_acquire))
        throw RetryException(HERE, 100, 1000,
                "Fulva: a cancel is moving the tablet back here");
    uint64_t floor = target->versionFloor;
    bool exists = currentVersion != VERSION_NONEXISTENT;
    if (!exists) {
        std::lock_guard<std::mutex> guard(target->mutex);
        auto it = target->removed.find(keyString(key));
        if (it != target->removed.end())
            floor = std::max(floor, it->second + 1);
    }
    return Fulva::versionForWrite(
            exists ? Fulva::Entry::OBJECT : Fulva::Entry::NONE,
            currentVersion, proposedVersion, floor);
}

/**
 * Called where ObjectManager is about to answer STATUS_UNKNOWN_TABLET:
 * between Prepare and adding the tablet, the source already sends clients
 * here, and "unknown tablet" would tell them the migration is over. Throws
 * RetryException for a key of a tablet on its way here.
 */
void
FulvaHost::retryIfArriving(uint64_t tableId, uint64_t keyHash)
{
    bool arriving = false;
    {
        SpinLock::Guard guard(lock);
        for (auto& entry : incoming) {
            const fulva_tablet& t = entry.second.tablet;
            if (!entry.second.tabletAdded && t.tableId == tableId &&
                    keyHash >= t.firstKeyHash && keyHash <= t.lastKeyHash)
                arriving = true;
        }
    }
    if (arriving)
        throw RetryException(HERE, 100, 1000,
                "Fulva: the tablet is migrating here and not yet added");
}

/**
 * Requests that need a whole tablet (enumeration, reads by key hash from an
 * index lookup) find it in neither copy while it moves: the source's frozen
 * copy misses the writes made at the destination, and the destination
 * misses what has not been pulled yet. They are told to retry; once the
 * move is done the client's retry reaches the new owner, which holds it all.
 */
void
FulvaHost::retryUntilMoved()
{
    // FULVA_FAULTS=wholeTabletReadsDuringMove answers them from whichever
    // copy is asked, so a test can show it would catch half a tablet.
    const char* faults = getenv("FULVA_FAULTS");
    if (faults != NULL && strstr(faults, "wholeTabletReadsDuringMove") != NULL)
        return;
    throw RetryException(HERE, 1000, 5000,
            "Fulva: the tablet is migrating; requests over the whole tablet "
            "wait for the move to finish");
}

void
FulvaHost::noteRemoved(Key& key, uint64_t version)
{
    std::shared_ptr<Target> target = findTarget(key.getTableId(),
                                                key.getHash());
    if (!target)
        return;
    std::lock_guard<std::mutex> guard(target->mutex);
    uint64_t& known = target->removed[keyString(key)];
    known = std::max(known, version);
}

/// The migration no longer needs per-request checks here (finished, or
/// undone before the coordinator mapped the tablet here).
void
FulvaHost::forgetTarget(uint64_t migrationId)
{
    SpinLock::Guard guard(lock);
    size_t before = targets.size();
    targets.erase(std::remove_if(targets.begin(), targets.end(),
            [migrationId](std::shared_ptr<Target>& target) {
                return target->request.migrationId == migrationId;
            }), targets.end());
    targetCount -= static_cast<int>(before - targets.size());
    incoming.erase(migrationId);
}

void
FulvaHost::installCompletionRecord(const string& entry)
{
    Buffer buffer;
    buffer.appendCopy(entry.data(), downCast<uint32_t>(entry.size()));
    RpcResult result(buffer);
    UnackedRpcResults& results = master->unackedRpcResults;
    if (!results.shouldRecover(result.getLeaseId(), result.getRpcId(),
            result.getAckId(), LOG_ENTRY_TYPE_RPCRESULT))
        return;
    Log::Reference reference;
    ObjectManager& om = master->objectManager;
    if (!om.log.append(LOG_ENTRY_TYPE_RPCRESULT, buffer, &reference))
        throw RetryException(HERE, 1000, 2000, "Must wait for cleaner");
    results.recoverRecord(result.getLeaseId(), result.getRpcId(),
            result.getAckId(), reinterpret_cast<void*>(
            reference.toInteger()));
}

/// Raises the segment safeVersion to at least `minimum`, atomically against
/// concurrent allocateVersion() calls.
void
FulvaHost::raiseSafeVersion(uint64_t minimum)
{
    std::atomic_uint_fast64_t& safeVersion =
            master->objectManager.segmentManager.safeVersion;
    uint64_t current = safeVersion.load();
    while (current < minimum &&
            !safeVersion.compare_exchange_weak(current, minimum)) {
    }
}

// MARK: host operations (the plugin's driver thread)

void
FulvaHost::opLog(void* context, int level, const char* message)
{
    static_cast<FulvaHost*>(context)->log(level, message);
}

int
FulvaHost::opPrepareSource(void* context,
                           const fulva_migration_request* request,
                           fulva_prepare_reply* reply, char* error,
                           size_t errorLength)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    // From here the source may freeze the tablet and send clients here:
    // requests for it are answered "retry" until it is added (or the
    // migration is abandoned), never "unknown tablet".
    {
        SpinLock::Guard guard(host->lock);
        host->incoming[request->migrationId].tablet = request->tablet;
    }
    if (request->reverses != 0) {
        int status = host->beginReverse(*request, error, errorLength);
        if (status != FULVA_OK)
            return status;
    }
    int status = guarded(error, errorLength, [&]() -> int {
        FulvaPrepareRpc rpc(host->context, ServerId(request->source),
                            *request);
        if (!waitPolitely(&rpc, RPC_TIMEOUT_SECONDS)) {
            report(error, errorLength, "the source did not answer Prepare "
                   "in time");
            return FULVA_ERROR_UNAVAILABLE;
        }
        rpc.wait();
        Buffer* response = rpc.reply();
        const WireFormat::FulvaPrepare::Response* respHdr =
                response->getStart<WireFormat::FulvaPrepare::Response>();
        uint32_t offset = sizeof32(*respHdr);
        const char* text = static_cast<const char*>(response->getRange(offset,
                respHdr->errorLength));
        string message = text == NULL ? "" : string(text,
                respHdr->errorLength);
        offset += respHdr->errorLength;
        if (respHdr->fulvaStatus != FULVA_OK) {
            report(error, errorLength, "the source refused Prepare: " +
                   message);
            return respHdr->fulvaStatus;
        }
        Incoming arrived;
        arrived.tablet = request->tablet;
        for (uint32_t i = 0; i < respHdr->completionRecords; i++) {
            const uint32_t* length = response->getOffset<uint32_t>(offset);
            if (length == NULL)
                throw FatalError(HERE, "short Prepare reply");
            offset += sizeof32(*length);
            const char* bytes = static_cast<const char*>(
                    response->getRange(offset, *length));
            if (bytes == NULL)
                throw FatalError(HERE, "short Prepare reply");
            arrived.records.emplace_back(bytes, *length);
            offset += *length;
        }
        reply->versionBound = respHdr->versionBound;
        reply->bucketCount = respHdr->bucketCount;
        reply->partitions = request->partitions;
        reply->completionRecords = respHdr->completionRecords;
        SpinLock::Guard guard(host->lock);
        host->incoming[request->migrationId] = arrived;
        return FULVA_OK;
    });
    if (status != FULVA_OK && request->reverses == 0) {
        SpinLock::Guard guard(host->lock);
        host->incoming.erase(request->migrationId);
    }
    return status;
}

/**
 * The start of a reverse run here, the cancelled migration's source: the
 * frozen copy becomes the reverse run's target before the other server
 * freezes its own, so that no request here is answered from the old copy
 * as if it were the whole truth; until ownership every request on the
 * tablet is told to retry. Idempotent (Prepare may be asked again).
 */
int
FulvaHost::beginReverse(const fulva_migration_request& request, char* error,
                        size_t errorLength)
{
    if (findTarget(request.migrationId))
        return FULVA_OK;
    const fulva_tablet& t = request.tablet;
    Source forward;
    if (!findSource(request.reverses, &forward) ||
            memcmp(&forward.request.tablet, &t, sizeof(t)) != 0) {
        report(error, errorLength, format("%s is not the source of "
                "migration %lu for this tablet", self.toString().c_str(),
                request.reverses));
        return FULVA_ERROR_REFUSED;
    }
    std::shared_ptr<Target> target(new Target(request, forward.versionBound,
            forward.bucketCount, std::max(request.partitions, 1u)));
    target->trustFrom = forward.versionBound;
    // FULVA_FAULTS=reverseTrustsOldEntries serves the old copy as the
    // latest (FulvaCore's ProtocolFaults of the same name), so a test can
    // show it would catch it.
    const char* faults = getenv("FULVA_FAULTS");
    if (faults != NULL && strstr(faults, "reverseTrustsOldEntries") != NULL)
        target->trustFrom = 0;
    target->preparing = true;
    {
        SpinLock::Guard guard(lock);
        targets.push_back(target);
    }
    targetCount++;
    if (!master->tabletManager.changeState(t.tableId, t.firstKeyHash,
            t.lastKeyHash, TabletManager::FULVA_SOURCE,
            TabletManager::FULVA_TARGET)) {
        forgetTarget(request.migrationId);
        report(error, errorLength, "the tablet is no longer frozen here");
        return FULVA_ERROR_REFUSED;
    }
    {
        SpinLock::Guard guard(lock);
        eraseSource(request.reverses);
    }
    if (plugin != NULL)
        pluginSourceEnd(plugin, request.reverses);
    LOG(NOTICE, "Fulva: migration %lu cancelled: its reverse run %lu moves "
            "tablet [0x%lx, 0x%lx] of table %lu back here (entries below "
            "version %lu are the old copy)", request.reverses,
            request.migrationId, t.firstKeyHash, t.lastKeyHash, t.tableId,
            forward.versionBound);
    return FULVA_OK;
}

int
FulvaHost::opTakeOwnership(void* context,
                           const fulva_migration_request* request,
                           const fulva_prepare_reply* prepared, char* error,
                           size_t errorLength)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    const fulva_tablet& t = request->tablet;
    return guarded(error, errorLength, [&]() -> int {
        Incoming arrived;
        {
            SpinLock::Guard guard(host->lock);
            arrived = host->incoming[request->migrationId];
        }
        ObjectManager& om = host->master->objectManager;
        // A fresh head segment before anything of the tablet lands here:
        // recovery of this master keeps what follows it. (A master that
        // never owned a tablet has no head yet; this makes one.)
        LogPosition head = om.log.rollHeadOver();
        for (const string& record : arrived.records)
            host->installCompletionRecord(record);
        // Writes here must beat every version the tablet had at the source.
        host->raiseSafeVersion(prepared->versionBound);
        std::shared_ptr<Target> target;
        if (request->reverses != 0) {
            // The tablet is here already (beginReverse); it learns the
            // other server's layout and floor, then takes requests.
            target = host->findTarget(request->migrationId);
            if (!target) {
                report(error, errorLength, "the reverse run's target state "
                       "is gone");
                return FULVA_ERROR_INTERNAL;
            }
            target->layout = Fulva::Layout{prepared->bucketCount,
                                           prepared->partitions};
            target->watermarks.reset(
                    new std::atomic<uint64_t>[prepared->partitions]);
            for (uint32_t p = 0; p < prepared->partitions; p++)
                target->watermarks[p].store(target->layout.firstBucket(p));
            target->versionFloor = prepared->versionBound;
            {
                SpinLock::Guard guard(host->lock);
                host->incoming[request->migrationId].tabletAdded = true;
            }
            target->preparing.store(false, std::memory_order_release);
            // This master's log holds the tablet's old copy from before
            // the cancelled run: all of it counts if this master crashes.
            head = LogPosition(0, 0);
        } else {
            target.reset(new Target(*request, prepared->versionBound,
                    prepared->bucketCount, prepared->partitions));
            if (!host->master->tabletManager.addTablet(t.tableId,
                    t.firstKeyHash, t.lastKeyHash,
                    TabletManager::FULVA_TARGET)) {
                report(error, errorLength, "this master already holds part "
                       "of the tablet");
                return FULVA_ERROR_REFUSED;
            }
            TableStats::addKeyHashRange(&host->master->masterTableMetadata,
                    t.tableId, t.firstKeyHash, t.lastKeyHash);
            {
                SpinLock::Guard guard(host->lock);
                host->targets.push_back(target);
                host->incoming[request->migrationId].tabletAdded = true;
            }
            host->targetCount++;
        }
        om.syncChanges();
        CoordinatorClient::reassignTabletOwnership(host->context, t.tableId,
                t.firstKeyHash, t.lastKeyHash, host->self,
                head.getSegmentId(), head.getSegmentOffset());
        {
            SpinLock::Guard guard(host->lock);
            host->incoming[request->migrationId].owned = true;
        }
        LOG(NOTICE, "Fulva: migration %lu: this master owns tablet "
                "[0x%lx, 0x%lx] of table %lu now (version floor %lu, %u "
                "completion records, %lu buckets in %u partitions at the "
                "source)", request->migrationId, t.firstKeyHash,
                t.lastKeyHash, t.tableId, prepared->versionBound,
                prepared->completionRecords, prepared->bucketCount,
                prepared->partitions);
        return FULVA_OK;
    });
}

int
FulvaHost::opPull(void* context, const fulva_migration_request* request,
                  const fulva_pull_request* pulls, size_t count,
                  fulva_pull_reply* replies)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    std::shared_ptr<Target> target = host->findTarget(request->migrationId);
    if (!target) {
        SpinLock::Guard guard(host->lock);
        return host->cancelled.count(request->migrationId) != 0
                ? FULVA_ERROR_CANCELLED : FULVA_ERROR_UNKNOWN_MIGRATION;
    }
    const uint32_t maxBytes = 256 * 1024;
    std::vector<std::unique_ptr<FulvaPullRpc>> rpcs;
    for (size_t i = 0; i < count; i++) {
        memset(&replies[i], 0, sizeof(replies[i]));
        replies[i].status = FULVA_ERROR_UNAVAILABLE;
        try {
            rpcs.emplace_back(new FulvaPullRpc(host->context,
                    ServerId(request->source), request->migrationId,
                    request->tablet, pulls[i].firstBucket, pulls[i].endBucket,
                    maxBytes));
        } catch (Exception& e) {
            rpcs.emplace_back();
        }
    }
    ObjectManager& om = host->master->objectManager;
    for (size_t i = 0; i < count; i++) {
        if (!rpcs[i])
            continue;
        try {
            if (!waitPolitely(rpcs[i].get(), RPC_TIMEOUT_SECONDS)) {
                rpcs[i]->cancel();
                continue;
            }
            rpcs[i]->wait();
            Buffer* response = rpcs[i]->reply();
            const WireFormat::FulvaPull::Response* respHdr =
                    response->getStart<WireFormat::FulvaPull::Response>();
            uint32_t offset = sizeof32(*respHdr);
            uint64_t bytes = 0;
            bool complete = true;
            for (uint32_t n = 0; n < respHdr->objects; n++) {
                const WireFormat::FulvaObject* header =
                        response->getOffset<WireFormat::FulvaObject>(offset);
                if (header == NULL) {
                    complete = false;
                    break;
                }
                offset += sizeof32(*header);
                host->replayPulled(target.get(), request->tablet.tableId,
                                   response, offset, header);
                offset += header->keysAndValueLength;
                bytes += header->keysAndValueLength;
            }
            if (!complete)
                continue;
            replies[i].status = FULVA_OK;
            replies[i].objects = respHdr->objects;
            replies[i].bytes = bytes;
            replies[i].resumeBucket = respHdr->resumeBucket;
        } catch (ClientException& e) {
            replies[i].status = static_cast<int32_t>(e.status);
        } catch (Exception& e) {
            replies[i].status = FULVA_ERROR_INTERNAL;
        }
    }
    // The batches are in the hash table; make them durable before the
    // plugin moves a watermark over them.
    om.syncChanges();
    return FULVA_OK;
}

int
FulvaHost::opPublishWatermark(void* context, uint64_t migrationId,
                              uint32_t partition, uint64_t bucket)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    std::shared_ptr<Target> target = host->findTarget(migrationId);
    if (!target || partition >= target->layout.partitions)
        return FULVA_ERROR_INVALID_ARGUMENT;
    std::atomic<uint64_t>& mark = target->watermarks[partition];
    uint64_t current = mark.load();
    while (current < bucket &&
            !mark.compare_exchange_weak(current, bucket,
                                        std::memory_order_release)) {
    }
    if (current < bucket)
        target->epoch.fetch_add(1, std::memory_order_release);
    return FULVA_OK;
}

int
FulvaHost::opFinish(void* context, const fulva_migration_request* request,
                    char* error, size_t errorLength)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    const fulva_tablet& t = request->tablet;
    if (!host->master->tabletManager.changeState(t.tableId, t.firstKeyHash,
            t.lastKeyHash, TabletManager::FULVA_TARGET,
            TabletManager::NORMAL)) {
        report(error, errorLength, "the tablet is no longer migrating here");
        return FULVA_ERROR_INTERNAL;
    }
    std::shared_ptr<Target> target = host->findTarget(request->migrationId);
    if (target) {
        std::lock_guard<std::mutex> guard(target->mutex);
        LOG(NOTICE, "Fulva: migration %lu finished here: %lu priority pulls, "
                "%lu keys removed during the move", request->migrationId,
                target->priorityPulls.load(), target->removed.size());
    }
    host->forgetTarget(request->migrationId);
    try {
        FulvaDropRpc rpc(host->context, ServerId(request->source),
                         request->migrationId, t, false);
        if (!waitPolitely(&rpc, RPC_TIMEOUT_SECONDS)) {
            report(error, errorLength, "the source did not confirm the drop "
                   "in time (it holds a frozen copy until it does)");
            return FULVA_ERROR_UNAVAILABLE;
        }
        rpc.wait();
    } catch (Exception& e) {
        report(error, errorLength, "the tablet serves here, but the source "
               "could not be told to drop it: " + e.str());
        return FULVA_ERROR_UNAVAILABLE;
    }
    return FULVA_OK;
}

int
FulvaHost::opAbandon(void* context, const fulva_migration_request* request,
                     char* error, size_t errorLength)
{
    FulvaHost* host = static_cast<FulvaHost*>(context);
    const fulva_tablet& t = request->tablet;
    Incoming state;
    {
        SpinLock::Guard guard(host->lock);
        auto it = host->incoming.find(request->migrationId);
        if (it != host->incoming.end())
            state = it->second;
    }
    TabletManager::Tablet tablet;
    if (state.owned && host->master->tabletManager.getTablet(t.tableId,
            t.firstKeyHash, t.lastKeyHash, &tablet) &&
            tablet.state == TabletManager::NORMAL) {
        // The source crashed and recovery brought its entries here
        // (recoverIntoTarget): the tablet is whole and ordinary.
        host->forgetTarget(request->migrationId);
        report(error, errorLength, "the source crashed; its entries of the "
               "tablet were recovered here, which serves all of it");
        return FULVA_ERROR_REFUSED;
    }
    if (state.owned) {
        // The coordinator maps the tablet here: keep serving it (keys not
        // yet moved are fetched from the frozen source on demand).
        report(error, errorLength, "the tablet stays here in the migrating "
               "state; keys not yet moved are fetched from the source on "
               "demand");
        return FULVA_ERROR_REFUSED;
    }
    if (request->reverses != 0) {
        // A reverse run that did not get the tablet: the old copy here
        // may be stale, so it keeps telling requests to retry rather
        // than answer from it; the operator sees the run failed.
        report(error, errorLength, "the reverse run did not take the "
               "tablet; it stays frozen here, and requests on it retry");
        return FULVA_ERROR_REFUSED;
    }
    if (state.tabletAdded) {
        host->master->tabletManager.deleteTablet(t.tableId, t.firstKeyHash,
                                                 t.lastKeyHash);
    }
    host->forgetTarget(request->migrationId);
    try {
        FulvaDropRpc rpc(host->context, ServerId(request->source),
                         request->migrationId, t, true);
        if (waitPolitely(&rpc, RPC_TIMEOUT_SECONDS))
            rpc.wait();
    } catch (Exception& e) {
        report(error, errorLength, "could not tell the source to unfreeze "
               "the tablet: " + e.str());
        return FULVA_ERROR_UNAVAILABLE;
    }
    return FULVA_OK;
}

} // namespace RAMCloud
