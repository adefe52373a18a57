/* Copyright (c) 2026 Fulva authors.
 *
 * Requests to a server the caller chooses, shared by fulva.h's protocol
 * calls (FulvaProtocol.cc) and the client shim's host operations
 * (FulvaShim.cc). Compiled into libramcloud and the server, which share
 * RAMCloud's client code (RamCloud.cc, ObjectRpcWrapper.cc call the shim).
 */
#ifndef RAMCLOUD_FULVADIRECT_H
#define RAMCLOUD_FULVADIRECT_H

#include <mutex>
#include <string>
#include <unordered_map>

#include "RamCloud.h"
#include "Transport.h"
#include "fulva/fulva.h"

namespace RAMCloud {
namespace FulvaDirect {

/**
 * Service locators of a cluster's servers by id. Clients address servers by
 * the ids that migration tags name; the coordinator's server list maps them
 * to locators, and is asked again only for an id it did not list before.
 * One table per connection (FulvaShim owns it): ids are unique within a
 * cluster, not across clusters a process may talk to in turn.
 */
class Locators {
  public:
    Locators() : mutex(), byId() {}
    /// A session to the server, or NULL when no such server is listed.
    Transport::SessionRef session(Context* context, uint64_t serverId);

  private:
    bool find(uint64_t serverId, std::string* locator);
    std::mutex mutex;
    std::unordered_map<uint64_t, std::string> byId;
    DISALLOW_COPY_AND_ASSIGN(Locators);
};

/// A session to the server by id, through the connection's Locators.
Transport::SessionRef session(Context* context, uint64_t serverId);

/// fulva_client_execute on a connection: every operation sent at once,
/// outcomes filled in, nothing retried. Throws RAMCloud exceptions for
/// failures of the connection itself.
int execute(RamCloud& ramcloud, const fulva_client_operation* operations,
            fulva_client_outcome* outcomes, size_t count,
            uint32_t timeoutMicros);

} // namespace FulvaDirect
} // namespace RAMCloud

#endif // RAMCLOUD_FULVADIRECT_H
