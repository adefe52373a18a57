import Foundation
import FulvaCore
import FulvaZooKeeper
import Testing

/// The coordinator's crash recovery reads the migration records in C++
/// (CShims/ramcloud/FulvaRecordFields.h): records written by the Swift
/// codec must read the same there, or a crashed source's keys would go
/// unrecovered without a word.
@Suite struct RecordFieldsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theCoordinatorsParserReadsWhatTheCodecWrites() throws {
        let directory = NSTemporaryDirectory() + "fulva-record-fields-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let program = directory + "/record_fields"
        let compile = try Self.run("/usr/bin/g++", ["-std=c++11", "-Wall", "-Wextra", "-Werror",
                                                     "-I", Self.root.appendingPathComponent("CShims/ramcloud").path,
                                                     "-o", program, Self.root.appendingPathComponent("Tests/ABI/record_fields.cc").path])
        #expect(compile.status == 0, "g++ failed:\n\(compile.output)")
        guard compile.status == 0 else { return }

        let crashed = ServerID(2 << 32 | 1)
        func record(_ id: UInt64, from source: ServerID, to destination: ServerID,
                    _ phases: [MigrationPhase]) throws -> MigrationRecord {
            var r = MigrationRecord(id: MigrationID(id), tablet: Tablet(tableID: 7, range: try KeyHashRange(start: 0x10, end: .max)),
                                    source: source, destination: destination, strategy: .fulva, createdAt: 1)
            for phase in phases { r = try r.moved(to: phase, at: 2) }
            r.versionBound = 991
            r.progress = 0.5
            r.lastError = "x=y"
            return r
        }
        let other = ServerID(3 << 32 | 4)
        let cases: [(MigrationRecord, String)] = [
            (try record(1, from: crashed, to: other, [.moving]),
             "moving 1 7 16 18446744073709551615 \(crashed.rawValue) \(other.rawValue)"),
            (try record(2, from: other, to: crashed, [.moving]),
             "moving 2 7 16 18446744073709551615 \(other.rawValue) \(crashed.rawValue)"),
            (try record(3, from: crashed, to: other, [.moving, .cancelling]),
             "moving 3 7 16 18446744073709551615 \(crashed.rawValue) \(other.rawValue)"),
            (try record(4, from: crashed, to: other, []), "not moving"),
            (try record(5, from: crashed, to: other, [.moving, .done]), "not moving"),
            (try record(6, from: crashed, to: other, [.moving, .failed]),
             "moving 6 7 16 18446744073709551615 \(crashed.rawValue) \(other.rawValue)"),
            (try record(8, from: crashed, to: other, [.moving, .cancelling, .cancelled]), "not moving"),
            (try record(7, from: other, to: ServerID(9), [.moving]), "not moving"),
        ]
        var files: [String] = []
        for (r, _) in cases {
            let path = directory + "/m-\(r.id.rawValue)"
            FileManager.default.createFile(atPath: path, contents: Data(RecordCodec.encode(r)))
            files.append(path)
        }
        let result = try Self.run(program, [String(crashed.rawValue)] + files)
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines == cases.map(\.1), "\(lines)")
    }

    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
