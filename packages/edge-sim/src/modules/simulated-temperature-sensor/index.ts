/**
 * Built-in SimulatedTemperatureSensor. `SIMULATED_TEMPERATURE_SENSOR_ENTRY` (in ../../deployment)
 * is the built main.js to run as a module process; the simulation and config are exported for tests.
 */
export { TemperatureSimulation, DEFAULT_SIMULATION, type SimulationParameters, type TemperatureMessageBody } from './simulation.js';
export { readSensorConfig, applyDesired, isResetCommand, parseTimeSpan, type SensorConfig } from './config.js';
export const SENSOR_OUTPUT = 'temperatureOutput';
