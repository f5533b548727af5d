using System.CommandLine;
using ConvLab.Cli;

var root = new RootCommand("ConvLab: convolutional neural networks in pure C#.");
root.Subcommands.Add(CheckReferenceCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.SetAction(_ => TrainCommand.RunDefault());
return root.Parse(args).Invoke();
