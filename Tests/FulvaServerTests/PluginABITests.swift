import Foundation
import FulvaCore
import FulvaServer
import Testing

/// The repository's root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let rulesFile = repositoryRoot.appendingPathComponent("Tests/ABI/rules.txt").path

/// One line of Tests/ABI/rules.txt.
struct RuleCase: CustomStringConvertible {
    var words: [String]
    var expected: String
    var description: String { words.joined(separator: " ") + " -> " + expected }

    static func load() throws -> [RuleCase] {
        try String(contentsOfFile: rulesFile, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { line in
                let words = line.split(separator: " ").map(String.init)
                let arrow = try #require(words.firstIndex(of: "->"), "malformed case: \(line)")
                return RuleCase(words: Array(words[..<arrow]), expected: words[arrow + 1])
            }
    }
}

func number(_ text: String) -> UInt64 {
    text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16)! : UInt64(text)!
}

func entry(_ word: String, _ version: Version) -> EntryVersion? {
    switch word {
    case "object": return .object(version)
    case "tombstone": return .tombstone(version)
    default: return nil
    }
}

/// FulvaCore's answer to one case; the C++ rules (FulvaRules.h) answer the
/// same cases in the ABI host, so both implementations agree.
func fulvaCoreAnswer(_ c: RuleCase) throws -> String {
    let w = c.words
    switch w[0] {
    case "bucket":
        return String(try HashTableLayout(bucketCount: number(w[1]), partitionCount: 1).bucket(of: number(w[2])))
    case "partition":
        return String(try HashTableLayout(bucketCount: number(w[1]), partitionCount: Int(number(w[2])))
            .partition(ofBucket: number(w[3])))
    case "covered":
        let layout = try HashTableLayout(bucketCount: number(w[1]), partitionCount: Int(number(w[2])))
        var marks = Watermarks(layout: layout)
        for (p, mark) in w[3].split(separator: ",").map({ number(String($0)) }).enumerated() {
            marks.raise(partition: p, to: mark)
        }
        return marks.isCovered(number(w[4])) ? "yes" : "no"
    case "reverse-read":
        // A reverse run's destination; the key lies below no watermark.
        let d = try DestinationMigration(id: MigrationID(2), tablet: Tablet(tableID: 1), source: ServerID(2),
                                         destination: ServerID(1), strategy: .fulva,
                                         reverse: ReverseRun(forward: MigrationID(1), forwardBound: number(w[3])),
                                         tuning: .init(partitions: 1, bucketsPerBatch: 4, pipelineDepth: 1))
        switch d.answerRead(keyHash: 0, local: entry(w[1], number(w[2])), fetched: w[4] == "yes") {
        case .object: return "object"
        case .tombstone: return "tombstone"
        case .absent: return "absent"
        case .notYetMoved(.object?): return "notYetMovedOverObject"
        case .notYetMoved(.absent?): return "notYetMovedOverAbsent"
        case .notYetMoved(nil): return "notYetMoved"
        }
    case "read", "admit":
        // A destination in the phase asked for; the key is never covered by
        // a watermark, so "known" is whether a priority pull brought it.
        let phase = w[0] == "read" ? "moving" : w[2]
        let strategy: Strategy = w[0] == "admit" && w[3] == "rocksteady" ? .rocksteady : .fulva
        let known = (w[0] == "read" ? w[2] : w[4]) == "yes"
        var d = try DestinationMigration(id: MigrationID(1), tablet: Tablet(tableID: 1), source: ServerID(1),
                                         destination: ServerID(2), strategy: strategy,
                                         tuning: .init(partitions: 1, bucketsPerBatch: 4, pipelineDepth: 1))
        if phase != "preparing" {
            d.prepared(PrepareResult(versionBound: 10, layout: try HashTableLayout(bucketCount: 8, partitionCount: 1)))
            d.tookOwnership()
        }
        if phase == "finished" {
            while !d.everythingReplayed {
                for batch in d.nextPulls() {
                    _ = d.pullArrived(batch, resumeAt: nil)
                    d.batchReplayed(batch)
                }
            }
            let finished = d.finish()
            #expect(finished)
        }
        if phase == "abandoned" { d.abandon() }
        let uncoveredKey: KeyHash = 0   // bucket 0 lies below no watermark yet
        if w[0] == "read" {
            switch d.answerRead(keyHash: uncoveredKey, local: entry(w[1], 5), fetched: known) {
            case .object: return "object"
            case .tombstone: return "tombstone"
            case .absent: return "absent"
            case .notYetMoved: return "notYetMoved"
            }
        }
        let kind: RequestKind = switch w[1] {
        case "read": .read
        case "blindWrite": .blindWrite
        case "blindRemove": .blindRemove
        case "readModifyWrite": .readModifyWrite
        default: .enumeration
        }
        return switch d.admit(kind, keyHash: uncoveredKey, local: nil, fetched: known) {
        case .execute: "execute"
        case .priorityFetchFirst: "priorityFetchFirst"
        case .retryAfterPriorityFetch: "retryAfterPriorityFetch"
        case .refuse: "refuse"
        case .retryLater: "retryLater"
        }
    case "version":
        let floor = number(w[4])
        return String(VersionRule.nextVersion(existing: entry(w[1], number(w[2])), safeVersion: number(w[3]),
                                              floor: floor == 0 ? nil : floor))
    case "replay":
        return ReplayRule.replaces(entry(w[1], number(w[2]))!, over: entry(w[3], number(w[4]))) ? "yes" : "no"
    case "bound":
        return String(VersionRule.versionBound(safeVersion: number(w[1]), highestVersionInTablet: number(w[2])))
    case "tag":
        let role: MigrationRole = w[1] == "source" ? .source : w[1] == "destination" ? .destination : .ended
        var identity: MigrationIdentity?
        if w[4] != "-" {
            let f = w[4].split(separator: ",").map { number(String($0)) }
            let strategy: Strategy = f[2] == 1 ? .fulva : f[2] == 2 ? .rocksteady : .source
            identity = MigrationIdentity(source: ServerID(f[0]), destination: ServerID(f[1]), strategy: strategy,
                                         tablet: Tablet(tableID: f[3], range: try KeyHashRange(start: f[4], end: f[5])),
                                         layout: try HashTableLayout(bucketCount: f[6], partitionCount: Int(f[7])))
        }
        let marks = w[5] == "-" ? [] : w[5].split(separator: ",").enumerated().map {
            MigrationTag.WatermarkUpdate(partition: UInt16($0.offset), bucket: UInt32(number(String($0.element))))
        }
        let tag = MigrationTag(migration: MigrationID(number(w[2])), role: role, epoch: UInt32(number(w[3])),
                               identity: identity, watermarks: marks)
        let bytes = tag.encoded()
        // What the C++ side writes, FulvaCore must read back unchanged.
        guard try MigrationTag(decoding: bytes) == tag else { return "no round trip" }
        return bytes.map { String(format: "%02x", $0) }.joined()
    default:
        Issue.record("unknown rule in \(c)")
        return "?"
    }
}

@Suite struct PluginABITests {
    @Test func fulvaCoreAgreesWithTheSharedRuleCases() throws {
        let cases = try RuleCase.load()
        #expect(cases.count > 100)
        for c in cases {
            let answer = try fulvaCoreAnswer(c)
            #expect(answer == c.expected, "FulvaCore: \(c) (got \(answer))")
        }
    }

    /// Where the plugin library is: $FULVA_PLUGIN, the build this test
    /// belongs to, or what scripts/build-plugin installed.
    static var pluginPath: String? {
        let fm = FileManager.default
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["FULVA_PLUGIN"] { candidates.append(explicit) }
        let buildDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        candidates += [buildDirectory.appendingPathComponent("libFulvaPlugin.so").path,
                       buildDirectory.deletingLastPathComponent().appendingPathComponent("libFulvaPlugin.so").path,
                       repositoryRoot.appendingPathComponent(".build/release/libFulvaPlugin.so").path,
                       NSString(string: "~/.cache/fulva/plugin/libFulvaPlugin.so").expandingTildeInPath]
        return candidates.first { fm.fileExists(atPath: $0) }
    }

    /// A C++ host, compiled here against fulva.h and FulvaRules.h only,
    /// loads the plugin and drives it; it also checks the C++ rules
    /// against the same cases as the test above.
    @Test(.timeLimit(.minutes(3))) func cxxHostLoadsAndDrivesThePlugin() throws {
        let plugin = try #require(Self.pluginPath, "libFulvaPlugin.so not found: swift build -c release, or scripts/build-plugin")
        let host = NSTemporaryDirectory() + "fulva-abi-host-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: host) }
        let compile = try run("/usr/bin/g++", ["-std=c++17", "-Wall", "-Wextra", "-Werror",
                                                "-I", repositoryRoot.appendingPathComponent("CShims/CFulva/include").path,
                                                "-I", repositoryRoot.appendingPathComponent("CShims/ramcloud").path,
                                                "-o", host, repositoryRoot.appendingPathComponent("Tests/ABI/abi_host.cc").path,
                                                "-ldl"])
        #expect(compile.status == 0, "g++ failed:\n\(compile.output)")
        guard compile.status == 0 else { return }
        let result = try run(host, [plugin, rulesFile])
        let failed = result.output.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(result.status == 0 && failed.isEmpty, "ABI host failures:\n\(failed.joined(separator: "\n"))\n\(result.output.suffix(2000))")
        #expect(result.output.contains("PASS: 0 failure(s)"))
        print(result.output.split(separator: "\n").filter { !$0.hasPrefix("ok C++ rule") }.joined(separator: "\n"))
    }

    func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let outputPath = NSTemporaryDirectory() + "fulva-abi-output-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try #require(FileHandle(forWritingAtPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        try output.close()
        return (process.terminationStatus, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}
