/*
 * transaction_client: an ordinary C++ RAMCloud client running bank
 * transfers with RAMCloud's Transaction API (Transaction.h, linked with
 * libramcloud). Each transfer reads two accounts, moves an amount between
 * them and writes a receipt key naming the transfer, all in one
 * transaction. It prints one line per transfer:
 *
 *   transfer <client> <seq> <from> <to> <amount> <outcome> <start ns> <end ns>
 *
 * outcome: committed (commit() returned true), aborted (it returned false:
 * a conflict), or failed:<status> (an exception: the outcome is unknown).
 * Accounts are keys "a<i>" holding an int64 balance; the receipt of
 * transfer <seq> of client <c> is key "r<c>-<seq>" holding the amount.
 * Amounts are distinct per transfer, so a transfer applied twice or lost
 * shows in the final balances.
 *
 * Usage: transaction_client <coordinator> <cluster> <table> <accounts>
 *                           <client id> <stop file> <max transfers>
 *                           <pause us>
 */
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ClientException.h"
#include "RamCloud.h"
#include "test_client.h"
#include "Transaction.h"

using RAMCloud::Buffer;
using RAMCloud::RamCloud;
using RAMCloud::Transaction;

namespace {

int64_t
balance(Transaction& transaction, uint64_t table, const std::string& key)
{
    Buffer value;
    transaction.read(table, key.data(), static_cast<uint16_t>(key.size()),
                     &value);
    int64_t amount = 0;
    if (value.size() != sizeof(amount))
        throw RAMCloud::ClientException(HERE, RAMCloud::STATUS_INTERNAL_ERROR);
    value.copy(0, sizeof(amount), &amount);
    return amount;
}

void
put(Transaction& transaction, uint64_t table, const std::string& key,
    int64_t amount)
{
    transaction.write(table, key.data(), static_cast<uint16_t>(key.size()),
                      &amount, sizeof(amount));
}

} // namespace

int
main(int argc, char** argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s <coordinator> <cluster> <table> "
                "<accounts> <client id> <stop file> <max transfers> "
                "<pause us>\n", argv[0]);
        return 2;
    }
    uint64_t accounts = strtoull(argv[4], NULL, 0);
    int64_t client = strtoll(argv[5], NULL, 0);
    const char* stopFile = argv[6];
    uint64_t maxTransfers = strtoull(argv[7], NULL, 0);
    useconds_t pause = static_cast<useconds_t>(strtoul(argv[8], NULL, 0));
    state = 7919 * static_cast<uint64_t>(client + 1);

    RamCloud ramcloud(argv[1], argv[2]);
    uint64_t table = ramcloud.getTableId(argv[3]);
    int64_t started = now();
    for (uint64_t seq = 0; seq < maxTransfers; seq++) {
        if ((seq & 7) == 0 && (access(stopFile, F_OK) == 0 ||
                               now() - started > 600000000000ll))
            break;
        uint64_t from = next() % accounts;
        uint64_t to = next() % accounts;
        if (from == to)
            to = (to + 1) % accounts;
        // Distinct per transfer of this client, and never zero.
        int64_t amount = static_cast<int64_t>(seq + 1);
        std::string fromKey = "a" + std::to_string(from);
        std::string toKey = "a" + std::to_string(to);
        std::string receipt = "r" + std::to_string(client) + "-" +
                std::to_string(seq);
        int64_t start = now();
        int64_t end = 0;
        std::string outcome;
        try {
            Transaction transaction(&ramcloud);
            int64_t fromBalance = balance(transaction, table, fromKey);
            int64_t toBalance = balance(transaction, table, toKey);
            put(transaction, table, fromKey, fromBalance - amount);
            put(transaction, table, toKey, toBalance + amount);
            put(transaction, table, receipt, amount);
            outcome = transaction.commit() ? "committed" : "aborted";
            end = now();
            // The outcome is known once commit() returns; the decisions
            // reach the participants after it. Waiting for them here keeps
            // the final state complete when the program exits.
            transaction.sync();
        } catch (RAMCloud::ClientException& e) {
            outcome = "failed:" + std::to_string(e.status);
        }
        if (end == 0)
            end = now();
        printf("transfer %" PRId64 " %" PRIu64 " %s %s %" PRId64 " %s %"
               PRId64 " %" PRId64 "\n", client, seq, fromKey.c_str(),
               toKey.c_str(), amount, outcome.c_str(), start, end);
        if (pause > 0)
            usleep(pause);
    }
    fflush(stdout);
    return 0;
}
