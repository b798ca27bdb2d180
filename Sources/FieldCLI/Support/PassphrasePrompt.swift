import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where passphrases for the device key come from: the environment (for
/// scripts; FIELDCLI_PASSPHRASE, FIELDCLI_NEW_PASSPHRASE) or the terminal,
/// with echo off. Never from a command-line argument, which other users of
/// the machine can read in the process list.
extension CLIContext {
    func devicePassphrase() throws -> String {
        if let value = environment["FIELDCLI_PASSPHRASE"], !value.isEmpty { return value }
        guard output.canPrompt else {
            throw CLIError(.usage, "This device's key is protected by a passphrase. Set FIELDCLI_PASSPHRASE or run the command in a terminal.",
                           code: "passphraseRequired")
        }
        return try PassphrasePrompt.read("Passphrase for this device: ", output: output)
    }

    func newDevicePassphrase() throws -> String {
        if let value = environment["FIELDCLI_NEW_PASSPHRASE"], !value.isEmpty {
            try DeviceKeyFile.checkNewPassphrase(value)
            return value
        }
        guard output.canPrompt else {
            throw CLIError(.usage, "Give the new passphrase in FIELDCLI_NEW_PASSPHRASE, or run the command in a terminal.",
                           code: "passphraseRequired")
        }
        let first = try PassphrasePrompt.read("New passphrase (at least \(DeviceKeyFile.minimumPassphraseLength) characters): ", output: output)
        try DeviceKeyFile.checkNewPassphrase(first)
        guard try PassphrasePrompt.read("Repeat it: ", output: output) == first else {
            throw CLIError.usage("The two passphrases differ. Nothing was changed; try again.")
        }
        return first
    }
}

/// The terminal settings to put back if a signal ends the process while
/// echo is off. Written before the handlers are installed and only read in
/// them, so the handlers never see it half written.
nonisolated(unsafe) private var terminalBeforePrompt = termios()

private let promptSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

enum PassphrasePrompt {
    /// Reads one line from the terminal with echo off, restored on return,
    /// on error and when Ctrl-C (or another terminating signal) ends the process.
    static func read(_ prompt: String, output: OutputSink) throws -> String {
        output.err(prompt, newline: false)
        var saved = termios()
        let hasTerminal = tcgetattr(STDIN_FILENO, &saved) == 0
        var previousHandlers: [Int32: sigaction] = [:]
        if hasTerminal {
            terminalBeforePrompt = saved
            for signal in promptSignals {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { signal in
                    // Only async-signal-safe calls: restore the terminal, then die of the signal as before.
                    _ = tcsetattr(STDIN_FILENO, TCSANOW, &terminalBeforePrompt)
                    Glibc.signal(signal, SIG_DFL)
                    raise(signal)
                }
                sigemptyset(&action.sa_mask)
                var previous = sigaction()
                sigaction(signal, &action, &previous)
                previousHandlers[signal] = previous
            }
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        }
        defer {
            if hasTerminal {
                _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
                for (signal, var previous) in previousHandlers { sigaction(signal, &previous, nil) }
            }
            output.err("")
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw CLIError.usage("No passphrase was given. Nothing was changed.")
        }
        return line
    }
}
