/* Copyright (c) 2026 Fulva authors.
 *
 * FulvaRecovery: what the coordinator's crash recovery needs to know of
 * Fulva. A migration's destination owns the tablet in the coordinator's
 * map from early on, while the source still holds the keys not yet moved;
 * when the source crashes, stock recovery recovers only the tablets mapped
 * to it, and those keys would be lost. The migration records (which the
 * destination keeps in the cluster's external storage, next to RAMCloud's
 * own state) name every tablet moving out of the crashed master and its
 * destination: recovery adds a partition for each, of the crashed master's
 * entries of that range, and hands it to the destination, which replays it
 * under what it holds (FulvaHost::recoverIntoTarget). A tablet moving into
 * the crashed master is recovered into its source, which still holds it
 * frozen (FulvaHost::recoverIntoSource), rather than into a master chosen
 * at random, which would get only the crashed master's part of it.
 *
 * Header only: Recovery.cc includes it (ramcloud-patches/0030).
 */
#ifndef RAMCLOUD_FULVARECOVERY_H
#define RAMCLOUD_FULVARECOVERY_H

#include <string>
#include <vector>

#include "ExternalStorage.h"
#include "ServerId.h"
#include "fulva/FulvaRecordFields.h"

namespace RAMCloud {
namespace FulvaRecovery {

/// A tablet a migration that has not ended is moving, and between whom.
struct MovingTablet {
    MovingTablet()
        : migrationId(0), tableId(0), firstKeyHash(0), lastKeyHash(0),
          source(), destination() {}
    uint64_t migrationId;
    uint64_t tableId;
    uint64_t firstKeyHash;
    uint64_t lastKeyHash;
    ServerId source;
    ServerId destination;
};

/// The migrations past Prepare that have not ended and involve `crashed`
/// (Fulva::movingWith), from the records under /fulva/<cluster>/migrations.
/// The cluster's name is the last part of the coordinator's workspace
/// ("/ramcloud/<cluster>/").
inline std::vector<MovingTablet>
tabletsMoving(ExternalStorage* storage, ServerId crashed)
{
    std::vector<MovingTablet> moving;
    if (storage == NULL)
        return moving;
    std::string workspace = storage->getWorkspace();
    while (!workspace.empty() && workspace.back() == '/')
        workspace.pop_back();
    std::string cluster = workspace.substr(workspace.rfind('/') + 1);
    std::string root = "/fulva/" + cluster + "/migrations";
    std::vector<ExternalStorage::Object> records;
    try {
        storage->getChildren(root.c_str(), &records);
    } catch (...) {
        return moving;
    }
    for (ExternalStorage::Object& record : records) {
        Fulva::MovingRecord m;
        if (record.value == NULL || !Fulva::movingWith(record.value,
                static_cast<size_t>(record.length), crashed.getId(), &m))
            continue;
        MovingTablet tablet;
        tablet.migrationId = m.migrationId;
        tablet.tableId = m.tableId;
        tablet.firstKeyHash = m.firstKeyHash;
        tablet.lastKeyHash = m.lastKeyHash;
        tablet.source = ServerId(m.source);
        tablet.destination = ServerId(m.destination);
        moving.push_back(tablet);
    }
    return moving;
}

} // namespace FulvaRecovery
} // namespace RAMCloud

#endif // RAMCLOUD_FULVARECOVERY_H
