/* Copyright (c) 2026 Fulva authors.
 *
 * FulvaHost: Fulva inside a RAMCloud master. It loads the Swift plugin
 * (the migration manager), gives it the host operations of fulva.h, serves
 * Fulva's RPCs (the source's side of Prepare, pulls, priority pulls, drop;
 * the destination's start and status; the opt-in read of protocol clients,
 * with its migration tag), and answers the per-request checks that
 * ObjectManager makes on a tablet in a Fulva state.
 *
 * A master without the plugin (FULVA_PLUGIN unset) behaves as stock
 * RAMCloud: no tablet ever enters a Fulva state, and the only cost on the
 * request path is one relaxed atomic load (migratingIn()).
 */
#ifndef RAMCLOUD_FULVAHOST_H
#define RAMCLOUD_FULVAHOST_H

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "Common.h"
#include "Key.h"
#include "Service.h"
#include "ServerId.h"
#include "SpinLock.h"
#include "WireFormat.h"
#include "fulva/FulvaRules.h"
#include "fulva/fulva.h"

namespace RAMCloud {

class Context;
class MasterService;
class Object;

class FulvaHost {
  public:
    FulvaHost(Context* context, MasterService* master);
    ~FulvaHost();

    void loadPlugin(ServerId self);
    bool hasPlugin() const { return plugin != NULL; }

    // RPC handlers (worker threads), dispatched by MasterService.
    void migrate(const WireFormat::FulvaMigrate::Request* reqHdr,
                 WireFormat::FulvaMigrate::Response* respHdr,
                 Service::Rpc* rpc);
    void status(const WireFormat::FulvaStatus::Request* reqHdr,
                WireFormat::FulvaStatus::Response* respHdr,
                Service::Rpc* rpc);
    void prepare(const WireFormat::FulvaPrepare::Request* reqHdr,
                 WireFormat::FulvaPrepare::Response* respHdr,
                 Service::Rpc* rpc);
    void pull(const WireFormat::FulvaPull::Request* reqHdr,
              WireFormat::FulvaPull::Response* respHdr,
              Service::Rpc* rpc);
    void priorityPull(const WireFormat::FulvaPriorityPull::Request* reqHdr,
                      WireFormat::FulvaPriorityPull::Response* respHdr,
                      Service::Rpc* rpc);
    void drop(const WireFormat::FulvaDrop::Request* reqHdr,
              WireFormat::FulvaDrop::Response* respHdr,
              Service::Rpc* rpc);
    bool recoverIntoSource(uint64_t tableId, uint64_t firstKeyHash,
                           uint64_t lastKeyHash);
    bool recoverIntoTarget(uint64_t tableId, uint64_t firstKeyHash,
                           uint64_t lastKeyHash);
    bool abandonRecoveryIntoTarget(uint64_t tableId, uint64_t firstKeyHash,
                                   uint64_t lastKeyHash);
    bool removedSince(Key& key, uint64_t version);
    void read(const WireFormat::FulvaRead::Request* reqHdr,
              WireFormat::FulvaRead::Response* respHdr,
              Service::Rpc* rpc);
    void transferProbe(const WireFormat::FulvaTransferProbe::Request* reqHdr,
                       WireFormat::FulvaTransferProbe::Response* respHdr,
                       Service::Rpc* rpc);

    // Per-request checks, called by ObjectManager on worker threads.

    /// Whether any tablet migrates into this master: the only check a
    /// request pays while none does.
    bool migratingIn() const
    {
        return targetCount.load(std::memory_order_relaxed) != 0;
    }
    /// Whether any tablet migrates into or out of this master.
    bool migrating() const
    {
        return migratingIn() ||
                sourceCount.load(std::memory_order_relaxed) != 0;
    }
    void tagRead(Key& key, Service::Rpc* rpc);
    /// Whether the key's tablet is a source's frozen copy here.
    bool frozenHere(Key& key);
    /// Whether the key's tablet is a rocksteady migration's source here,
    /// which refuses reads.
    bool lockedHere(Key& key);
    void fetchIfUnknown(Key& key, Fulva::RequestKind kind);
    uint64_t versionForWrite(Key& key, uint64_t currentVersion,
                             uint64_t proposedVersion);
    void noteRemoved(Key& key, uint64_t version);
    void retryIfArriving(uint64_t tableId, uint64_t keyHash);
    void retryIfArriving(Key& key)
    {
        retryIfArriving(key.getTableId(), key.getHash());
    }
    static void retryUntilMoved();

  PRIVATE:
    /// A migration into this master: what the per-request checks read.
    struct Target {
        Target(const fulva_migration_request& request, uint64_t versionFloor,
               uint64_t bucketCount, uint32_t partitions);
        bool contains(uint64_t tableId, uint64_t keyHash) const
        {
            return tableId == request.tablet.tableId &&
                    keyHash >= request.tablet.firstKeyHash &&
                    keyHash <= request.tablet.lastKeyHash;
        }
        bool isCovered(uint64_t keyHash) const;
        bool knows(const std::string& key);

        fulva_migration_request request;
        uint64_t versionFloor;
        Fulva::Layout layout;
        /// Per partition: every bucket below is replayed. Published by the
        /// plugin; only grows.
        std::unique_ptr<std::atomic<uint64_t>[]> watermarks;
        std::mutex mutex;
        /// Keys removed here during the move, with the removal's version:
        /// a replay of an older copy from the source must not bring them
        /// back (kept here rather than as hash-table tombstones).
        std::unordered_map<std::string, uint64_t> removed;
        /// Keys whose state a priority pull settled (found at the source
        /// and replayed, or absent there).
        std::unordered_set<std::string> fetched;
        /// A reverse run (cancel): the forward run's version bound. This
        /// master still holds its old copy of the tablet, and its entries
        /// below the bound are that copy: they count as not yet moved
        /// until a watermark or a priority pull settles their key. 0 for
        /// a forward run (every entry here is the latest).
        uint64_t trustFrom;
        /// A reverse run between its start here and ownership: the tablet
        /// is already in the target state, the forward destination is
        /// still freezing it, and every request on it is told to retry.
        std::atomic<bool> preparing;
        /// Priority pulls made for requests that reached keys not yet here.
        std::atomic<uint64_t> priorityPulls;
        /// Bumped whenever a watermark rises: a client that names the
        /// current epoch in its read has every watermark already.
        std::atomic<uint32_t> epoch;
        DISALLOW_COPY_AND_ASSIGN(Target);
    };

    /// A migration out of this master, from Prepare until the drop: what
    /// the source's reply tags name.
    struct Source {
        Source()
            : request(), bucketCount(0), versionBound(0), undoes(),
              tombstoneKeys() {}
        Source(const fulva_migration_request& request, uint64_t bucketCount,
               uint64_t versionBound, std::shared_ptr<Target> undoes)
            : request(request), bucketCount(bucketCount),
              versionBound(versionBound), undoes(undoes), tombstoneKeys() {}
        fulva_migration_request request;
        uint64_t bucketCount;
        uint64_t versionBound;
        /// A reverse run's source (the cancelled migration's destination):
        /// that migration's target state, frozen, which says what this
        /// master's copy knows (its watermarks, priority pulls, removals)
        /// and which entries were written here (versions at or above its
        /// floor); NULL for a forward run.
        std::shared_ptr<Target> undoes;
        /// Its removals, sorted by this master's hash-table bucket: the
        /// reverse pulls carry them as tombstones.
        std::shared_ptr<std::vector<std::pair<uint64_t, std::string>>>
                tombstoneKeys;
    };

    /// A migration into this master from the moment it sends Prepare:
    /// what the source handed over, kept until ownership.
    struct Incoming {
        Incoming() : tablet(), records(), owned(false), tabletAdded(false) {}
        fulva_tablet tablet;
        std::vector<std::string> records;
        bool owned;
        bool tabletAdded;
    };

    std::shared_ptr<Target> findTarget(uint64_t tableId, uint64_t keyHash);
    std::shared_ptr<Target> findTarget(uint64_t migrationId);
    bool findSource(uint64_t tableId, uint64_t keyHash, Source* source);
    bool findSource(uint64_t migrationId, Source* source);
    void eraseSource(uint64_t migrationId);
    string tagFor(const Source& source, uint64_t hintMigration);
    string tagFor(Target* target, uint64_t hintMigration,
                  uint32_t hintEpoch);
    bool replayObject(Target* target, Object& object);
    bool replayTombstone(Target* target, Key& key, uint64_t version);
    void replayPulled(Target* target, uint64_t tableId, Buffer* response,
                      uint32_t offset,
                      const WireFormat::FulvaObject* header);
    int beginReverse(const fulva_migration_request& request, char* error,
                     size_t errorLength);
    void appendTombstones(const Source& source, uint64_t firstBucket,
                          uint64_t endBucket, Buffer* reply,
                          uint32_t* count);
    void forgetTarget(uint64_t migrationId);
    void installCompletionRecord(const std::string& entry);
    void raiseSafeVersion(uint64_t minimum);
    void removeOrphanedObjectsPaced();
    uint32_t preparedOperationsIn(const fulva_tablet& tablet);
    void collectCompletionRecords(const fulva_tablet& tablet, Buffer* out,
                                  uint32_t* count);
    void log(int level, const char* message);

    // fulva.h host operations (the plugin's driver thread calls them).
    static void opLog(void* context, int level, const char* message);
    static int opPrepareSource(void* context,
                               const fulva_migration_request* request,
                               fulva_prepare_reply* reply, char* error,
                               size_t errorLength);
    static int opTakeOwnership(void* context,
                               const fulva_migration_request* request,
                               const fulva_prepare_reply* prepared,
                               char* error, size_t errorLength);
    static int opPull(void* context, const fulva_migration_request* request,
                      const fulva_pull_request* pulls, size_t count,
                      fulva_pull_reply* replies);
    static int opPublishWatermark(void* context, uint64_t migrationId,
                                  uint32_t partition, uint64_t bucket);
    static int opFinish(void* context, const fulva_migration_request* request,
                        char* error, size_t errorLength);
    static int opAbandon(void* context, const fulva_migration_request* request,
                         char* error, size_t errorLength);

    Context* context;
    MasterService* master;
    ServerId self;
    fulva_host_ops ops;

    // The plugin's exports (NULL when no plugin is loaded).
    void* plugin;
    int (*pluginMigrate)(void*, const fulva_migration_request*, char*, size_t);
    int (*pluginDrive)(void*, uint64_t);
    int (*pluginStatus)(void*, uint64_t, fulva_migration_status*);
    int (*pluginSourcePrepare)(void*, const fulva_migration_request*, uint64_t,
                               uint64_t, uint64_t, uint64_t*, char*, size_t);
    int (*pluginSourceEnd)(void*, uint64_t);

    /// Protects targets, incoming and sources.
    SpinLock lock;
    std::vector<std::shared_ptr<Target>> targets;
    std::vector<Source> sources;
    /// Forward runs cancelled here (this master was their destination),
    /// by migration id, until their reverse run ends: their driver is told
    /// so rather than that the migration is unknown.
    std::unordered_map<uint64_t, std::shared_ptr<Target>> cancelled;
    std::unordered_map<uint64_t, Incoming> incoming;
    std::atomic<int> targetCount;
    std::atomic<int> sourceCount;
    /// Kept alive for ops.externalStorage and ops.clusterName.
    string externalStorage;
    string clusterName;

    DISALLOW_COPY_AND_ASSIGN(FulvaHost);
};

} // namespace RAMCloud

#endif // RAMCLOUD_FULVAHOST_H
