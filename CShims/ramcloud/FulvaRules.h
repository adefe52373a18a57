/* Copyright (c) 2026 Fulva authors.
 *
 * The per-request rules a master applies in C++ to a tablet that migrates,
 * without calling into Swift: they run on RAMCloud's worker threads for
 * every request on the tablet, against watermarks the Swift manager
 * publishes. They mirror FulvaCore (DestinationMigration, VersionRule,
 * ReplayRule, HashTableLayout) decision for decision; Tests/ABI/rules.txt
 * holds the cases both implementations are checked against.
 *
 * Header only and free of RAMCloud headers, so the ABI test host compiles
 * it on its own.
 */
#ifndef FULVA_RULES_H
#define FULVA_RULES_H

#include <cstdint>
#include <string>

namespace Fulva {

/// The source's hash table as the migration sees it: bucket count (a power
/// of two) cut into contiguous partitions.
struct Layout {
    uint64_t bucketCount;
    uint32_t partitions;

    /// HashTable::findBucketIndex: the low 48 bits of the hash, masked.
    uint64_t bucketOf(uint64_t keyHash) const
    {
        return (keyHash & 0x0000ffffffffffffUL) & (bucketCount - 1);
    }

    /// Partition p holds buckets [p*B/P, (p+1)*B/P). The products fit in
    /// 64 bits: B <= 2^31 and P < 2^16.
    uint64_t firstBucket(uint32_t p) const
    {
        return bucketCount * p / partitions;
    }

    uint32_t partitionOfBucket(uint64_t bucket) const
    {
        uint32_t p = static_cast<uint32_t>(bucket * partitions / bucketCount);
        while (p + 1 < partitions && firstBucket(p + 1) <= bucket)
            p++;
        while (p > 0 && firstBucket(p) > bucket)
            p--;
        return p;
    }

    /// Whether every key whose bucket lies below the partition's watermark
    /// is already replayed, given the watermarks (absolute bucket indices).
    bool isCovered(uint64_t keyHash, const uint64_t* watermarks) const
    {
        uint64_t bucket = bucketOf(keyHash);
        return bucket < watermarks[partitionOfBucket(bucket)];
    }
};

/// What the destination's hash table holds for a key.
enum class Entry { NONE, OBJECT, TOMBSTONE };

/// The answers to a read at the destination (DESIGN.md §3); a reverse
/// run's destination reports what it cannot tell yet over its old copy.
enum class ReadAnswer { OBJECT, TOMBSTONE, ABSENT, NOT_YET_MOVED,
                        NOT_YET_MOVED_OVER_OBJECT, NOT_YET_MOVED_OVER_ABSENT };

/// Whether the destination's entry (or absence) for a key is its latest
/// state (a forward run): the key's bucket is below its watermark, a
/// priority pull brought it, or the destination holds any entry for it
/// (the source is frozen, so a replayed copy is the latest, and a write
/// here beats every copy there).
inline bool
knowsKey(Entry local, bool covered, bool fetched)
{
    return covered || fetched || local != Entry::NONE;
}

/// A read admitted at the destination; `known` as knowsKey() says.
inline ReadAnswer
answerRead(Entry local, bool known)
{
    switch (local) {
    case Entry::OBJECT:
        return ReadAnswer::OBJECT;
    case Entry::TOMBSTONE:
        return ReadAnswer::TOMBSTONE;
    case Entry::NONE:
    default:
        return known ? ReadAnswer::ABSENT : ReadAnswer::NOT_YET_MOVED;
    }
}

/// Whether an entry here is the key's latest state as far as its version
/// goes. A reverse run's destination (trustFrom: the cancelled run's
/// version bound; 0 for a forward run) still holds its old copy: an object
/// below the bound is that copy. Removals here are always its own.
inline bool
trusts(Entry local, uint64_t version, uint64_t trustFrom)
{
    return local != Entry::OBJECT || version >= trustFrom;
}

/// A read at a reverse run's destination: as answerRead, except that a key
/// it cannot tell yet is reported over the old copy it holds (the client
/// merges that with the other server's answer).
inline ReadAnswer
answerReverseRead(Entry local, uint64_t version, uint64_t trustFrom,
                  bool covered, bool fetched)
{
    bool known = knowsKey(trusts(local, version, trustFrom) ? local
                                                            : Entry::NONE,
                          covered, fetched);
    if (known)
        return answerRead(local, true);
    return local == Entry::OBJECT ? ReadAnswer::NOT_YET_MOVED_OVER_OBJECT
                                  : ReadAnswer::NOT_YET_MOVED_OVER_ABSENT;
}

/// Kinds of requests, as FulvaCore's RequestKind.
enum class RequestKind { READ, BLIND_WRITE, BLIND_REMOVE, READ_MODIFY_WRITE,
                         ENUMERATION };

enum class Admission { EXECUTE, PRIORITY_FETCH_FIRST, RETRY_AFTER_PRIORITY_FETCH,
                       REFUSE, RETRY_LATER };

enum class Phase { PREPARING, MOVING, FINISHED, ABANDONED };

/// What the destination does with a request on the migrating tablet.
/// `rocksteady` selects the baseline that never answers "not yet moved".
inline Admission
admit(RequestKind kind, Phase phase, bool rocksteady, bool known)
{
    switch (phase) {
    case Phase::PREPARING:
        return kind == RequestKind::ENUMERATION ? Admission::REFUSE
                                                : Admission::RETRY_LATER;
    case Phase::ABANDONED:
        return Admission::REFUSE;
    case Phase::FINISHED:
        return Admission::EXECUTE;
    case Phase::MOVING:
    default:
        break;
    }
    switch (kind) {
    case RequestKind::BLIND_WRITE:
    case RequestKind::BLIND_REMOVE:
        return Admission::EXECUTE;
    case RequestKind::ENUMERATION:
        return Admission::REFUSE;
    case RequestKind::READ_MODIFY_WRITE:
        return known ? Admission::EXECUTE : Admission::PRIORITY_FETCH_FIRST;
    case RequestKind::READ:
    default:
        return (rocksteady && !known) ? Admission::RETRY_AFTER_PRIORITY_FETCH
                                      : Admission::EXECUTE;
    }
}

/// The version a write (or a remove's tombstone) gets at the destination
/// while the tablet migrates: RAMCloud's own rule (existing + 1, or the
/// segment safeVersion for a new key), raised to the version floor so it
/// beats every copy at the source. `floor` 0 means none (finished).
inline uint64_t
versionForWrite(Entry existing, uint64_t existingVersion, uint64_t safeVersion,
                uint64_t floor)
{
    uint64_t stock = existing == Entry::NONE ? safeVersion
                                             : existingVersion + 1;
    return stock > floor ? stock : floor;
}

/// Replay at the destination: higher version wins; a tombstone of version
/// v beats every object of version <= v.
inline bool
replayReplaces(Entry incoming, uint64_t incomingVersion, Entry existing,
               uint64_t existingVersion)
{
    if (existing == Entry::NONE)
        return true;
    if (incoming == Entry::TOMBSTONE && existing == Entry::OBJECT)
        return incomingVersion >= existingVersion;
    return incomingVersion > existingVersion;
}

/// The source's version bound: above every version the tablet ever had
/// (an overwrite does not raise the segment safeVersion).
inline uint64_t
versionBound(uint64_t safeVersion, uint64_t highestVersionInTablet)
{
    uint64_t above = highestVersionInTablet + 1;
    return above > safeVersion ? above : safeVersion;
}

/// The role a reply tag names (FulvaCore's MigrationRole).
enum class Role : uint8_t { SOURCE = 1, DESTINATION = 2, ENDED = 3 };

/// What a reply about a migrating tablet tells the client (FulvaCore's
/// MigrationTag). The identity and the watermarks are optional: a client
/// that already has them is sent only what changed.
struct Tag {
    Role role;
    uint64_t migration;
    uint32_t epoch;
    bool withIdentity;
    uint64_t source;
    uint64_t destination;
    uint8_t strategyCode;       // 1 fulva, 2 rocksteady, 3 source
    uint64_t tableId;
    uint64_t firstKeyHash;
    uint64_t lastKeyHash;
    Layout layout;
    /// Absolute bucket per partition; `watermarkCount` of them (0: none).
    const uint64_t* watermarks;
    uint32_t watermarkCount;
};

namespace Detail {
template<typename T>
inline void
appendLittleEndian(std::string* out, T value)
{
    for (size_t i = 0; i < sizeof(T); i++)
        out->push_back(static_cast<char>((static_cast<uint64_t>(value) >>
                                          (8 * i)) & 0xff));
}
} // namespace Detail

/// The tag's bytes, exactly as MigrationTag.encoded() writes them:
///   u8 role | u64 migration | u32 epoch | u8 flags (bit 0: identity)
///   [identity: u64 source | u64 destination | u8 strategy | u64 tableId |
///    u64 firstKeyHash | u64 lastKeyHash | u32 log2(bucketCount) |
///    u16 partitions]
///   u16 count | count x (u16 partition | u32 bucket)
inline std::string
encodeTag(const Tag& tag)
{
    using Detail::appendLittleEndian;
    std::string out;
    out.reserve(64 + 6 * tag.watermarkCount);
    appendLittleEndian(&out, static_cast<uint8_t>(tag.role));
    appendLittleEndian(&out, tag.migration);
    appendLittleEndian(&out, tag.epoch);
    appendLittleEndian(&out, static_cast<uint8_t>(tag.withIdentity ? 1 : 0));
    if (tag.withIdentity) {
        appendLittleEndian(&out, tag.source);
        appendLittleEndian(&out, tag.destination);
        appendLittleEndian(&out, tag.strategyCode);
        appendLittleEndian(&out, tag.tableId);
        appendLittleEndian(&out, tag.firstKeyHash);
        appendLittleEndian(&out, tag.lastKeyHash);
        appendLittleEndian(&out, static_cast<uint32_t>(
                __builtin_ctzll(tag.layout.bucketCount)));
        appendLittleEndian(&out, static_cast<uint16_t>(tag.layout.partitions));
    }
    appendLittleEndian(&out, static_cast<uint16_t>(tag.watermarkCount));
    for (uint32_t p = 0; p < tag.watermarkCount; p++) {
        appendLittleEndian(&out, static_cast<uint16_t>(p));
        appendLittleEndian(&out, static_cast<uint32_t>(tag.watermarks[p]));
    }
    return out;
}

} // namespace Fulva

#endif // FULVA_RULES_H
