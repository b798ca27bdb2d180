import HTTPTypes
import Dispatch
import GRDB
import Synchronization

/// Group commit (DESIGN §5): writes from concurrent syncs are queued and run
/// together in one SQLite transaction, each in its own savepoint, so one
/// fsync covers many syncs. Each caller resumes only after that commit:
/// acknowledged means durable.
final class GroupCommitter: Sendable {
    private struct Job: Sendable {
        let run: @Sendable (Database) throws -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    private let drainQueue = DispatchQueue(label: "fieldsync.group-commit")
    /// At most this many jobs share one transaction, so one slow batch does not grow without bound.
    private let maxBatch = 256

    init(pool: DatabasePool) { self.pool = pool }

    /// Runs `body` in a write transaction shared with other concurrent writers
    /// and returns its result once that transaction has committed. An error
    /// thrown by `body` rolls back only its own savepoint.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            // The box is written by the drain thread inside the transaction and
            // read by `finish`, which the same thread calls after commit.
            let box = ResultBox<T>()
            let job = Job(
                run: { db in box.value = try body(db) },
                finish: { error in
                    if let error {
                        continuation.resume(throwing: error)
                    } else if let value = box.value {
                        continuation.resume(returning: value)
                    } else {
                        continuation.resume(throwing: ServerError(.internalError, "A write did not produce a result.", status: .internalServerError))
                    }
                })
            let start = state.withLock { state -> Bool in
                state.queue.append(job)
                if state.draining { return false }
                state.draining = true
                return true
            }
            if start { drainQueue.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [Job] in
                let taken = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false }
                return taken
            }
            if batch.isEmpty { return }
            var failures = [Int: any Error]()
            do {
                try pool.write { db in
                    for (index, job) in batch.enumerated() {
                        do {
                            try db.inSavepoint {
                                try job.run(db)
                                return .commit
                            }
                        } catch {
                            failures[index] = error
                        }
                    }
                }
                for (index, job) in batch.enumerated() { job.finish(failures[index]) }
            } catch {
                for job in batch { job.finish(error) }
            }
        }
    }
}

/// Holds one job's result between the transaction and the resume. Only the
/// drain thread touches it, first inside the transaction and then after the
/// commit, so the accesses never overlap.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
