/* Copyright (c) 2026 Fulva authors.
 *
 * The migration records as C++ reads them: the "key=value" lines that
 * FulvaZooKeeper's RecordCodec writes, and which migrations a crashed
 * master takes part in. Free of RAMCloud headers, so the ABI tests compile
 * it on its own and check it against records the Swift codec wrote.
 */
#ifndef FULVA_RECORDFIELDS_H
#define FULVA_RECORDFIELDS_H

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

namespace Fulva {

/// A migration past Prepare that has not ended, as its record names it.
struct MovingRecord {
    MovingRecord()
        : migrationId(0), tableId(0), firstKeyHash(0), lastKeyHash(0),
          source(0), destination(0) {}
    uint64_t migrationId;
    uint64_t tableId;
    uint64_t firstKeyHash;
    uint64_t lastKeyHash;
    uint64_t source;            // RAMCloud ServerId
    uint64_t destination;
};

/// The record's "key=value" lines.
inline std::map<std::string, std::string>
recordFields(const char* bytes, size_t length)
{
    std::map<std::string, std::string> out;
    std::string text(bytes, length);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        size_t equals = text.find('=', start);
        if (equals != std::string::npos && equals < end)
            out[text.substr(start, equals - start)] =
                    text.substr(equals + 1, end - equals - 1);
        start = end + 1;
    }
    return out;
}

/// Whether the record is of a migration that may have left a tablet in
/// the migrating state with `server` as its source or destination; fills
/// `moving` when it is. That is moving, cancelling (a cancel's reverse run
/// is a record of its own), and failed: a migration that failed after
/// ownership keeps the tablet migrating at its destination, and operators'
/// tools mark a migration failed as soon as one of its servers is gone,
/// which may be before the coordinator's recovery reads the records. (One
/// that failed before ownership left the tablet with its source; the
/// caller checks whom the tablet map names.)
inline bool
movingWith(const char* bytes, size_t length, uint64_t server,
           MovingRecord* moving)
{
    std::map<std::string, std::string> f = recordFields(bytes, length);
    const std::string& phase = f["phase"];
    if (phase != "moving" && phase != "cancelling" && phase != "failed")
        return false;
    MovingRecord m;
    m.source = strtoull(f["source"].c_str(), NULL, 10);
    m.destination = strtoull(f["destination"].c_str(), NULL, 10);
    if (m.source != server && m.destination != server)
        return false;
    m.migrationId = strtoull(f["id"].c_str(), NULL, 10);
    m.tableId = strtoull(f["table"].c_str(), NULL, 10);
    m.firstKeyHash = strtoull(f["firstKeyHash"].c_str(), NULL, 10);
    m.lastKeyHash = strtoull(f["lastKeyHash"].c_str(), NULL, 10);
    *moving = m;
    return true;
}

} // namespace Fulva

#endif // FULVA_RECORDFIELDS_H
