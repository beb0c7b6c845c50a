import { EnclaveEdgeError } from '@enclave-edge/errors';

/**
 * A route that does not parse. The message names the route and the 1-based column and shows
 * the route text with a caret under the offending character, e.g.
 *
 *   route "toUp" is invalid at column 18: expected INTO or WHERE, found "WHER"
 *     FROM /messages/* WHER x INTO $upstream
 *                      ^
 */
export class RouteSyntaxError extends EnclaveEdgeError {
  readonly route: string;
  readonly column: number;
  readonly reason: string;

  constructor(route: string, text: string, offset: number, reason: string) {
    const column = offset + 1;
    const oneLine = text.replace(/[\r\n\t]/g, ' ');
    super(
      'CONFIG_INVALID',
      `route "${route}" is invalid at column ${column}: ${reason}\n  ${oneLine}\n  ${' '.repeat(offset)}^`,
      { detail: { route, column, reason } },
    );
    this.name = 'RouteSyntaxError';
    this.route = route;
    this.column = column;
    this.reason = reason;
  }
}
