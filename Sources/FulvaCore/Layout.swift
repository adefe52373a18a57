/// The shape of the source's hash table as the migration sees it: its bucket
/// count and how the buckets are cut into contiguous partitions. It travels
/// with the migration's first progress report, so that a client computes a
/// key's bucket and partition exactly as the source does.
public struct HashTableLayout: Hashable, Sendable {
    /// RAMCloud's HashTable::numBuckets; a power of two.
    public let bucketCount: UInt64
    public let partitionCount: Int

    public static let maxPartitions = Int(UInt16.max)

    public init(bucketCount: UInt64, partitionCount: Int) throws(FulvaError) {
        guard bucketCount > 0, bucketCount & (bucketCount - 1) == 0 else {
            throw .invalidLayout("bucket count \(bucketCount) is not a power of two")
        }
        guard bucketCount <= 1 << 31 else {
            // Watermarks travel as 32-bit bucket indices.
            throw .invalidLayout("bucket count \(bucketCount) exceeds 2^31")
        }
        guard partitionCount >= 1, UInt64(partitionCount) <= bucketCount,
              partitionCount <= Self.maxPartitions else {
            throw .invalidLayout("\(partitionCount) partitions for \(bucketCount) buckets")
        }
        self.bucketCount = bucketCount
        self.partitionCount = partitionCount
    }

    /// HashTable::findBucketIndex: the low 48 bits of the key hash, masked.
    public func bucket(of keyHash: KeyHash) -> UInt64 {
        (keyHash & 0x0000_ffff_ffff_ffff) & (bucketCount - 1)
    }

    /// Partition p holds buckets [p·B/P, (p+1)·B/P).
    public func buckets(ofPartition p: Int) -> Range<UInt64> {
        let b = bucketCount, n = UInt64(partitionCount), i = UInt64(p)
        return (b * i / n)..<(b * (i + 1) / n)
    }

    public func partition(ofBucket bucket: UInt64) -> Int {
        // Inverse of buckets(ofPartition:), exact for the floor divisions used there.
        let n = UInt64(partitionCount)
        var p = Int((bucket * n) / bucketCount)
        while p + 1 < partitionCount && buckets(ofPartition: p + 1).lowerBound <= bucket { p += 1 }
        while p > 0 && buckets(ofPartition: p).lowerBound > bucket { p -= 1 }
        return p
    }

    public func partition(of keyHash: KeyHash) -> Int { partition(ofBucket: bucket(of: keyHash)) }
}

/// Per-partition replay watermarks: w[p] is the end (exclusive bucket index)
/// of the gap-free prefix of partition p whose batches are replayed. Every
/// key of the tablet whose bucket lies below w[p] is fully present at the
/// destination. This value is what the destination publishes and what every
/// client copies.
public struct Watermarks: Hashable, Sendable {
    public let layout: HashTableLayout
    public private(set) var buckets: [UInt64]

    public init(layout: HashTableLayout) {
        self.layout = layout
        self.buckets = (0..<layout.partitionCount).map { layout.buckets(ofPartition: $0).lowerBound }
    }

    public func isCovered(_ keyHash: KeyHash) -> Bool {
        let bucket = layout.bucket(of: keyHash)
        return bucket < buckets[layout.partition(ofBucket: bucket)]
    }

    public var isComplete: Bool {
        (0..<layout.partitionCount).allSatisfy { buckets[$0] >= layout.buckets(ofPartition: $0).upperBound }
    }

    /// Watermarks only move forward; an older report never moves one back.
    @discardableResult
    public mutating func raise(partition p: Int, to bucket: UInt64) -> Bool {
        guard p >= 0, p < buckets.count else { return false }
        let capped = min(bucket, layout.buckets(ofPartition: p).upperBound)
        guard capped > buckets[p] else { return false }
        buckets[p] = capped
        return true
    }

    public mutating func completeAll() {
        for p in 0..<layout.partitionCount { raise(partition: p, to: layout.buckets(ofPartition: p).upperBound) }
    }

    /// Fraction of buckets covered, for progress bars.
    public var fractionCovered: Double {
        var covered: UInt64 = 0
        for p in 0..<layout.partitionCount {
            covered += buckets[p] - layout.buckets(ofPartition: p).lowerBound
        }
        return Double(covered) / Double(layout.bucketCount)
    }
}
