// Reads migration records (files the Swift codec wrote) with the C++ side's
// parser (FulvaRecordFields.h): for each file, whether it names a migration
// moving data with the given server, and what it names.
//
// Usage: record_fields SERVER_ID FILE...
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "FulvaRecordFields.h"

int
main(int argc, char** argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: record_fields SERVER_ID FILE...\n");
        return 64;
    }
    uint64_t server = strtoull(argv[1], NULL, 10);
    for (int i = 2; i < argc; i++) {
        std::ifstream in(argv[i], std::ios::binary);
        std::stringstream bytes;
        bytes << in.rdbuf();
        std::string text = bytes.str();
        Fulva::MovingRecord m;
        if (Fulva::movingWith(text.data(), text.size(), server, &m))
            printf("moving %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                   " %" PRIu64 " %" PRIu64 "\n", m.migrationId, m.tableId,
                   m.firstKeyHash, m.lastKeyHash, m.source, m.destination);
        else
            printf("not moving\n");
    }
    return 0;
}
