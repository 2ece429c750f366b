// `earshot serve`: the OpenAI-compatible HTTP server. Its options are made from the one table of
// settings (src/server/settings.ts); every value (flag, EARSHOT_* variable or config file) is
// validated by src/server/config.ts, the one loader.
import { Command, Option } from 'commander';
import { log } from '../log.ts';
import { loadServerConfig, maskedConfig, type ServerConfig } from '../server/config.ts';
import { SETTINGS, shownDefault, type Setting, type SettingName } from '../server/settings.ts';
import { startServer } from '../server/app.ts';
import { installShutdown } from '../server/shutdown.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The command-line option of one setting: its help names the variable and the default. */
export function optionOf(name: SettingName): Option {
  const s: Setting = SETTINGS[name];
  const shown = shownDefault(name);
  const help = `${s.help}${shown !== undefined ? ` (default ${shown})` : ''}; $${s.env}`;
  const option = new Option(s.flag, help);
  const isList = Array.isArray(s.schema.safeParse(undefined).data);
  return isList ? option.argParser(collect) : option;
}

const OPTIONS = (Object.keys(SETTINGS) as SettingName[]).map((name) => ({ name, option: optionOf(name) }));

/**
 * The settings given on the command line, by setting name. Only values the user actually typed
 * count: commander defaults a --no- flag to true, which must not override the environment or file.
 */
export function flagsToConfig(cmd: Command): Partial<Record<keyof ServerConfig, unknown>> {
  const values = cmd.opts();
  const out: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const { name, option } of OPTIONS) {
    const key = option.attributeName();
    if (cmd.getOptionValueSource(key) === 'cli') out[name] = values[key];
  }
  return out;
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('run the OpenAI-compatible HTTP API (default 127.0.0.1:8000)')
    .option('--config <file>', 'JSON config file whose keys are the setting names (also $EARSHOT_CONFIG)');
  for (const { option } of OPTIONS) cmd.addOption(option);
  return cmd.action(async (flags: { config?: string }, self: Command) => {
    const config = loadServerConfig({ flags: flagsToConfig(self), ...(flags.config ? { configFile: flags.config } : {}) });
    log.info({ config: maskedConfig(config) }, 'effective configuration');
    const server = await startServer(config);
    installShutdown(server.app, { timeoutS: config.shutdownTimeoutS });
    try {
      await server.loaded;
    } catch (e) {
      await server.app.close();
      throw e;
    }
  });
}
