/* Copyright (c) 2026 Fulva authors.
 *
 * Requests to a server the caller chooses, shared by fulva.h's protocol
 * calls (FulvaProtocol.cc) and the client shim's host operations
 * (FulvaShim.cc). Compiled into libramcloud and the server, which share
 * RAMCloud's client code (RamCloud.cc, ObjectRpcWrapper.cc call the shim).
 */
#ifndef RAMCLOUD_FULVADIRECT_H
#define RAMCLOUD_FULVADIRECT_H

#include "RamCloud.h"
#include "Transport.h"
#include "fulva/fulva.h"

namespace RAMCloud {
namespace FulvaDirect {

/// A session to the server, by the id migration tags name (its locator
/// from the coordinator's server list); NULL when no such server is listed.
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
