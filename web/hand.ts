import { call } from './api.ts';

/**
 * Raises or lowers the learner's hand through the join API with their seatToken: for the join
 * page today and the workspace page (issue 18). `joinUrl` is the join function's URL (the local
 * stack's `/join`); the call is `POST {joinUrl}/hand {seatToken, raised}`.
 */
export function setHand(
  joinUrl: string,
  seatToken: string,
  raised: boolean,
): Promise<{ seat: number; raised: boolean; raisedAt: string | null }> {
  return call('POST', `${joinUrl.replace(/\/+$/, '')}/hand`, { seatToken, raised });
}
