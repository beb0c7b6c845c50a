/**
 * The data model of Microsoft's SimulatedTemperatureSensor: machine temperature climbs from
 * machineTempMin with jitter (average +0.5 per message) and wanders ±0.5 once above
 * machineTempMax; pressure follows temperature linearly; ambient temperature stays near
 * ambientTemp; humidity is 24–26 %. `reset` puts the machine temperature back to the minimum.
 */

export interface SimulationParameters {
  machineTempMin: number;
  machineTempMax: number;
  machinePressureMin: number;
  machinePressureMax: number;
  ambientTemp: number;
}

export const DEFAULT_SIMULATION: SimulationParameters = {
  machineTempMin: 21,
  machineTempMax: 100,
  machinePressureMin: 1,
  machinePressureMax: 10,
  ambientTemp: 21,
};

/** The JSON body of each `temperatureOutput` message (same field names as the original). */
export interface TemperatureMessageBody {
  machine: { temperature: number; pressure: number };
  ambient: { temperature: number; humidity: number };
  timeCreated: string;
}

export class TemperatureSimulation {
  private temperature: number;
  private resetPending = false;

  constructor(
    private readonly p: SimulationParameters = DEFAULT_SIMULATION,
    private readonly random: () => number = Math.random,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.temperature = p.machineTempMin;
  }

  /** Takes effect at the next reading, as in the original. */
  reset(): void {
    this.resetPending = true;
  }

  next(): TemperatureMessageBody {
    const p = this.p;
    if (this.resetPending) {
      this.temperature = p.machineTempMin;
      this.resetPending = false;
    }
    if (this.temperature > p.machineTempMax) this.temperature += this.random() - 0.5;
    else this.temperature += -0.25 + this.random() * 1.5;
    const slope = (p.machinePressureMax - p.machinePressureMin) / (p.machineTempMax - p.machineTempMin);
    return {
      machine: { temperature: this.temperature, pressure: p.machinePressureMin + (this.temperature - p.machineTempMin) * slope },
      ambient: { temperature: p.ambientTemp + this.random() - 0.5, humidity: 24 + Math.floor(this.random() * 3) },
      timeCreated: this.now().toISOString(),
    };
  }
}
