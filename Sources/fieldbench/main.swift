import FieldBench
import Foundation

exit(await BenchCommand.runMain(Array(CommandLine.arguments.dropFirst())))
