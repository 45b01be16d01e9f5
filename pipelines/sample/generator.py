"""Deterministic, seeded generator for the sample city's source extracts.

``generate_city(out_dir, departments_yaml=...)`` writes the extracts the sample
city's systems would hand over, one file per month (``YYYYMM``, e.g. 202503)
from ``first_month`` to ``last_month``, for the departments in
``sources/reference/departments.yaml``:

* ``service_transactions/好差评明细_YYYYMM.csv`` - GBK, CRLF.  One row per case
  received that month (办件编号 ... 申诉结果); the bulk of the data.
* ``hotline_complaints/12345工单_YYYYMM.csv`` - UTF-8 with BOM, LF.  12345
  tickets received that month; names the department (承办部门), not its id.
* ``surveys/万人评机关_YYYYMM.xlsx`` - sheet 问卷结果: merged title in row 1,
  row 2 empty, header in row 3.  20-120 responses per department (a few
  quiet departments sometimes fewer than 10).
* ``leader_reviews/领导点评_YYYYQq.xlsx`` - sheet 领导点评, header in row 1.
  One row per department existing at quarter end; only quarters whose three
  months are all in the range.
* ``budget/预算执行_YYYYMM.xlsx`` - first sheet 说明 (notes), data on the second
  sheet 执行情况: title row, unit row, header in row 3, data, one empty row and
  a 注： row.
* ``projects/重点项目_YYYYMM.csv`` - UTF-8, LF.  Key-project milestones planned
  for that month, 0-4 per department.
* ``adjustments/加减分_YYYYMM.csv`` - GBK, LF.  A few bonus/penalty rows a month
  and exactly one 一票否决 in the whole range.

Timestamps are ``YYYY-MM-DD HH:MM:SS`` and dates ``YYYY-MM-DD`` (text, also in
the workbooks).  Column headers are listed in the ``*_COLUMNS`` constants.

How the city behaves
--------------------
* Every department gets a behaviour profile drawn from the seed: most are
  ``stable``; about ten ``improving`` and ten ``declining`` (their latent
  quality drifts over the months), three or four ``poor`` performers, and three
  ``gaps`` departments that miss a month or two in some sources (see
  ``GenerationSummary.gaps`` for exactly which).  The latent quality drives the
  on-time rate, the rating mix, survey scores, substantiated hotline tickets,
  budget execution, milestone delays and leader review scores.
* Volumes differ a lot: 窗口服务类 departments handle tens of times more cases
  than 综合管理类 ones.  Every department that is active in a month (and has no
  transaction gap) has at least one case in that month.
* A department with ``merged_into`` stops after its ``valid_to``; from then on
  its service items and volume appear under the absorbing department.  A
  department with a ``valid_from`` inside the range has no data before it.
* The extracts are as of the first day after ``last_month`` ("extract day"):
  anything that would finish later is still open (empty completion fields).

Determinism and scale
---------------------
Same seed and arguments give byte-identical files: every random draw comes
from ``numpy.random.default_rng`` seeded with ``[seed, source, month]`` (so one
source's draws never shift another's), nothing reads the clock, and XLSX zips
are rewritten with fixed entry dates and fixed document properties.  Service
transactions are generated and written day by day (split further when a day
exceeds ``CHUNK_ROWS``), so memory stays bounded at tens of millions of rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from pipelines.sample import anomalies as planted_anomalies
from pipelines.sample.gaming import (
    BURST_RATINGS,
    FAST_RATINGS,
    FAST_SHARE,
    choose_gaming,
    game_ratings,
    pasted_praise,
)
from pipelines.xlsx import save_workbook

# --------------------------------------------------------------------------
# Public constants
# --------------------------------------------------------------------------

PEER_GROUPS = ("窗口服务类", "执法监管类", "综合管理类", "经济发展类", "社会事业类")
DEFAULT_TRANSACTIONS = 60_000
# Largest batch of transaction rows generated at once; bounds peak memory.
CHUNK_ROWS = 100_000
# progress() is called at least this often (in rows) and at the end of each file.
PROGRESS_EVERY = 100_000

SOURCES = (
    "service_transactions",
    "hotline_complaints",
    "surveys",
    "leader_reviews",
    "budget",
    "projects",
    "adjustments",
)

TRANSACTION_COLUMNS = [
    "办件编号",
    "部门编码",
    "部门名称",
    "事项名称",
    "办理渠道",
    "受理时间",
    "办结时间",
    "承诺时限",
    "应交材料数",
    "实交材料数",
    "评价等级",
    "评价内容",
    "评价时间",
    "是否整改",
    "整改时间",
    "是否申诉",
    "申诉结果",
]
HOTLINE_COLUMNS = ["工单编号", "承办部门", "受理时间", "办结时间", "诉求类别", "是否属实", "诉求内容"]
SURVEY_COLUMNS = ["问卷编号", "被评部门", "填报日期", "服务态度", "办事效率", "廉洁自律", "总体满意度", "意见建议"]
LEADER_COLUMNS = ["部门编码", "部门名称", "年度", "季度", "评分", "点评意见"]
BUDGET_COLUMNS = ["部门编码", "部门名称", "月份", "预算数", "执行数"]
PROJECT_COLUMNS = ["项目编号", "部门编码", "项目名称", "里程碑", "计划完成日期", "实际完成日期"]
ADJUSTMENT_COLUMNS = ["部门编码", "类型", "分值", "事由", "依据文号"]

# Ratings ordered from worst to best; index 5 is "no rating".
RATING_LEVELS = ("非常不满意", "不满意", "基本满意", "满意", "非常满意", "")

# --------------------------------------------------------------------------
# Service item catalogue of the sample city: "事项名称/承诺时限(工作日)".
# Departments added to the registry without an entry here get generic items.
# --------------------------------------------------------------------------

SERVICE_ITEMS: dict[str, str] = {
    "市政务服务和数据管理局": "企业开办一件事/1, 工程建设项目审批代办/15, 跨省通办事项受理/5, 投资项目在线审批赋码/1, 中介服务超市入驻登记/3, 政务服务好差评申诉受理/5",
    "市人民政府办公室": "政府信息公开申请/20, 市长信箱来信办理/10, 规范性文件征求意见反馈/15",
    "市发展和改革委员会": "企业投资项目核准/20, 企业投资项目备案/1, 固定资产投资项目节能审查/15, 价格认定/10, 政府定价成本监审/20",
    "市教育局": "民办学校设立审批/20, 教师资格认定/20, 学历证明补办/5, 校外培训机构审批/20, 义务教育入学登记/5, 学生资助申请/10",
    "市科学技术局": "高新技术企业认定受理/20, 科技型中小企业评价/10, 技术合同认定登记/5, 科技计划项目申报/20",
    "市工业和信息化局": "技术改造项目备案/5, 专精特新企业认定申报/20, 无线电台执照核发/15, 工业企业技改补助申请/20",
    "市公安局": "居民身份证申领/20, 户口迁移/5, 户籍证明开具/1, 居住证办理/7, 无犯罪记录证明/3, 旅馆业特种行业许可/20, 保安服务许可/20, 大型群众性活动安全许可/7",
    "市民政局": "社会团体成立登记/20, 民办非企业单位登记/20, 最低生活保障申请/20, 养老机构备案/5, 殡葬服务补贴申领/5, 临时救助申请/10",
    "市司法局": "法律援助申请/7, 律师执业证审核/20, 公证员执业审核/20, 人民调解申请/10, 基层法律服务工作者执业核准/20",
    "市财政局": "代理记账机构审批/10, 政府采购投诉处理/20, 财政票据领购/1, 会计人员信息采集/1",
    "市人力资源和社会保障局": "社会保障卡申领/5, 社保卡补办/1, 失业保险金申领/5, 就业困难人员认定/10, 职业技能等级证书核查/5, 劳动人事争议仲裁申请/5, 工伤认定申请/20, 养老保险待遇核定/20, 人力资源服务许可/20",
    "市自然资源和规划局": "建设用地规划许可证核发/20, 建设工程规划许可证核发/20, 乡村建设规划许可/20, 测绘资质审批/20, 建设项目用地预审/20",
    "市生态环境局": "建设项目环境影响评价审批/20, 排污许可证核发/20, 危险废物经营许可/20, 辐射安全许可证核发/20",
    "市住房和城乡建设局": "建筑工程施工许可证核发/5, 商品房预售许可/10, 建筑业企业资质核准/20, 房屋建筑工程竣工验收备案/5, 燃气经营许可/20, 建设工程消防验收/15",
    "市交通运输局": "道路运输经营许可/20, 出租汽车驾驶员从业资格证核发/10, 网约车运输证核发/10, 超限运输车辆行驶公路许可/5, 公路非公路标志设置许可/20",
    "市水利局": "取水许可/20, 水土保持方案审批/20, 河道管理范围内建设项目审批/20, 农村供水工程报修受理/1",
    "市农业农村局": "农药经营许可/20, 兽药经营许可/20, 种子生产经营许可/20, 农机购置补贴申请/15, 动物防疫条件合格证核发/20, 家庭农场名录登记/5",
    "市商务局": "对外贸易经营者备案登记/5, 单用途商业预付卡备案/10, 报废机动车回收拆解企业资质认定/20, 成品油零售经营资格审批/20",
    "市文化广电和旅游局": "营业性演出审批/3, 娱乐场所经营许可/15, 旅行社设立许可/20, 网吧经营许可/20, 广播电视节目制作经营许可/20, A级旅游景区评定申请/20",
    "市卫生健康委员会": "医疗机构执业登记/20, 医师执业注册/20, 护士执业注册/20, 出生医学证明补发/5, 计划生育家庭特别扶助申请/20, 母婴保健技术服务执业许可/20",
    "市退役军人事务局": "退役士兵安置报到/5, 优待证申领/10, 伤残抚恤关系转移/20, 烈士褒扬金发放/10, 自主就业退役士兵一次性经济补助/10",
    "市应急管理局": "危险化学品经营许可/20, 安全生产许可证核发/20, 特种作业操作证复审/10, 烟花爆竹经营许可/20, 生产安全事故应急预案备案/5",
    "市审计局": "审计结果公开申请/20, 审计举报受理/15, 内部审计工作备案/5",
    "市人民政府国有资产监督管理委员会": "国有产权登记/10, 企业国有资产评估备案/20, 国有企业负责人薪酬备案/10",
    "市市场监督管理局": "营业执照设立登记/3, 营业执照变更登记/3, 营业执照注销登记/3, 食品经营许可/10, 食品生产许可/20, 特种设备使用登记/10, 计量器具型式批准/20, 商标质押登记/5, 药品零售企业许可/20, 消费投诉受理/7",
    "市统计局": "统计调查项目审批/20, 统计执法检查证办理/10, 统计数据查询/3",
    "市医疗保障局": "医保关系转移接续/15, 异地就医备案/1, 门诊慢特病待遇认定/10, 生育医疗费用报销/15, 医保零星报销/20, 定点医药机构申请/20, 灵活就业人员参保登记/1",
    "市城市管理综合行政执法局": "城市建筑垃圾处置核准/10, 户外广告设施设置审批/10, 占用城市道路审批/5, 挖掘城市道路审批/5, 城市绿地占用审批/15, 门头牌匾设置备案/3",
    "市信访局": "信访事项受理/15, 信访事项复查/20, 领导接访预约/5",
    "市机关事务管理局": "公务用车更新审批/15, 办公用房调配申请/20, 公共机构节能项目申报/20",
    "市粮食和物资储备局": "粮食收购企业备案/5, 粮油仓储单位备案/5, 政策性粮食销售出库证明/3",
    "市林业局": "林木采伐许可证核发/15, 使用林地审核/20, 野生动物人工繁育许可/20, 林草种子生产经营许可/20",
    "市体育局": "高危险性体育项目经营许可/20, 体育类社会组织审查/20, 社会体育指导员等级认定/15, 全民健身场馆开放预约/1",
    "市地方金融管理局": "小额贷款公司设立审核/20, 融资担保公司设立审批/20, 地方金融组织年审/20",
    "市投资促进局": "招商项目落地协调/10, 外商投资企业咨询服务/3, 投资项目信息登记/5",
    "市人民政府外事办公室": "因公出国（境）任务审批/10, 外国人来华邀请函办理/10, 因公护照办理/7, APEC商务旅行卡申请/20",
    "市档案馆": "档案查阅利用/1, 档案证明出具/3, 民生档案跨馆出证/5",
    "市人民防空办公室": "人防工程易地建设审批/20, 人防工程竣工验收备案/5, 人防警报设施拆除审批/20",
    "市税务局": "增值税发票领用/1, 税务登记信息变更/1, 个人所得税汇算清缴退税/15, 清税证明开具/1, 纳税信用复评/15, 社保费缴纳/1, 完税证明开具/1, 跨区域涉税事项报验/1",
    "市住房公积金管理中心": "公积金缴存登记/1, 公积金提取/3, 公积金个人住房贷款/15, 公积金异地转移接续/5, 缴存证明开具/1",
    "市公共资源交易中心": "工程建设项目招标公告发布/3, 政府采购项目进场登记/1, 投标保证金退还/5, 交易场地预约/1, CA数字证书办理/1",
    "市不动产登记中心": "不动产首次登记/10, 不动产转移登记/5, 不动产抵押登记/3, 不动产变更登记/5, 不动产注销登记/1, 不动产登记资料查询/1, 预告登记/3",
    "市社会保险事业管理中心": "企业职工养老保险参保登记/1, 养老保险关系转移接续/15, 个人权益记录查询打印/1, 退休人员待遇资格认证/1, 工伤保险待遇核定/10, 丧葬补助金申领/10",
    "市公安局交通警察支队": "机动车注册登记/1, 机动车转移登记/1, 驾驶证换证/1, 驾驶证补证/1, 机动车检验合格标志核发/1, 交通事故认定复核/20, 临时号牌核发/1",
    "市公安局出入境管理支队": "普通护照签发/7, 往来港澳通行证签发/7, 往来台湾通行证签发/7, 外国人居留许可/15, 出入境记录查询/1",
    "市就业服务中心": "就业登记/1, 失业登记/1, 创业担保贷款申请/15, 职业培训补贴申领/20, 就业见习补贴申领/15",
    "市消防救援支队": "公众聚集场所营业前消防安全检查/10, 火灾事故认定/20, 消防安全举报投诉受理/3",
    "市交通运输综合行政执法支队": "超限运输违法处理/5, 道路运输违法行为处理/5, 交通运输执法投诉受理/10",
    "市生态环境保护综合行政执法支队": "环境违法行为举报受理/10, 行政处罚陈述申辩受理/5, 企业环境信用修复申请/15",
    "市卫生健康综合监督执法局": "公共场所卫生许可/20, 生活饮用水供水单位卫生许可/20, 卫生监督投诉举报受理/10",
    "市农业综合行政执法支队": "农资打假投诉受理/10, 农业行政处罚陈述申辩受理/5, 渔业违法行为举报受理/10",
    "市文化市场综合行政执法支队": "文化市场举报受理/10, 文化市场行政处罚陈述申辩受理/5, 旅游投诉受理/10",
    "市委办公室": "市委督查事项交办/10, 党内规范性文件备案审查/20, 机要文件交换登记/1",
    "市委组织部": "党员组织关系转接/5, 干部人事档案查阅审批/5, 党员教育培训报名/3, 高层次人才认定/20",
    "市委宣传部": "出版物零售单位设立审批/20, 电影放映单位设立审批/20, 印刷企业设立审批/20, 内部资料性出版物准印证核发/10",
    "市委统战部": "宗教活动场所设立审批/20, 宗教教职人员备案/10, 民族成分变更审核/20, 宗教临时活动地点审批/20",
    "市委机构编制委员会办公室": "事业单位法人设立登记/10, 事业单位法人变更登记/5, 事业单位法人年度报告公示/5, 事业单位法人证书补领/5",
    "市总工会": "困难职工帮扶申请/15, 职工法律援助申请/7, 工会法人资格登记/10, 职工医疗互助报销/15",
    "共青团市委": "青年就业见习报名/5, 希望工程助学申请/20, 青少年维权求助受理/5",
    "市妇女联合会": "妇女儿童维权投诉受理/7, 婚姻家庭纠纷调解/10, 困难妇女帮扶申请/15",
    "市残疾人联合会": "残疾人证核发/20, 残疾人两项补贴申请/15, 残疾人辅助器具适配申请/15, 残疾人就业保障金减免/10",
    "市红十字会": "遗体器官捐献登记/5, 造血干细胞捐献登记/3, 人道救助申请/15, 应急救护培训报名/3",
    "市疾病预防控制中心": "预防接种证补办/1, 健康证明体检预约/1, 职业健康检查报告查询/3, 预防接种异常反应鉴定申请/20",
    "市教育考试院": "成绩证明开具/3, 自学考试毕业证申请/20, 考试报名资格审核/5, 考试违纪申诉/15",
    "市婚姻登记中心": "结婚登记/1, 离婚登记/1, 补领婚姻登记证/1, 婚姻登记档案查询/1",
    "市数据局": "公共数据开放申请/15, 数据资源目录注册/10, 政务数据共享申请/10, 数据产品登记/20",
    "市供销合作社联合社": "基层供销社恢复重建申报/20, 农资供应网点备案/5, 再生资源回收网点备案/5",
    "市地方志编纂中心": "地情资料查阅/3, 地方志书编纂业务指导/15, 年鉴资料征集报送/10",
}

GENERIC_ITEMS = {
    "窗口服务类": "综合业务受理/3, 证明材料开具/1, 办理进度查询/1",
    "执法监管类": "投诉举报受理/10, 行政处罚陈述申辩受理/5, 行政许可受理/20",
    "综合管理类": "政府信息公开申请/20, 业务咨询答复/5, 资料查阅/3",
    "经济发展类": "项目申报受理/20, 资质审核/20, 政策兑现申请/15",
    "社会事业类": "补贴申请/15, 证明材料开具/3, 服务预约/1",
}

# --------------------------------------------------------------------------
# Behaviour model parameters (the "physics" of the sample city)
# --------------------------------------------------------------------------

# Relative monthly case volume of a typical department, by peer group (median).
GROUP_VOLUME = {"窗口服务类": 100.0, "执法监管类": 15.0, "综合管理类": 2.5, "经济发展类": 12.0, "社会事业类": 12.0}
# Baseline latent quality by peer group; 执法监管类 draws more complaints.
GROUP_QUALITY = {"窗口服务类": 0.3, "执法监管类": -0.2, "综合管理类": 0.25, "经济发展类": 0.0, "社会事业类": 0.1}
# Annual budget median (万元) by peer group.
GROUP_BUDGET = {
    "窗口服务类": 9000.0,
    "执法监管类": 15000.0,
    "综合管理类": 4000.0,
    "经济发展类": 30000.0,
    "社会事业类": 20000.0,
}
# Key projects per department (min, max) by peer group.
GROUP_PROJECTS = {
    "窗口服务类": (1, 3),
    "执法监管类": (1, 2),
    "综合管理类": (0, 1),
    "经济发展类": (2, 4),
    "社会事业类": (1, 3),
}
# Case volume by calendar month: Spring Festival in Feb, National Day in Oct.
MONTH_VOLUME = {1: 1.0, 2: 0.75, 3: 1.1, 4: 1.0, 5: 0.95, 6: 1.05, 7: 1.0, 8: 0.95, 9: 1.05, 10: 0.85, 11: 1.0, 12: 1.1}
# Spending by calendar month: slow start, year-end rush in December.
MONTH_SPENDING = {
    1: 0.55,
    2: 0.6,
    3: 0.85,
    4: 0.9,
    5: 0.95,
    6: 1.15,
    7: 0.9,
    8: 0.95,
    9: 1.15,
    10: 0.9,
    11: 1.1,
    12: 1.9,
}

PROFILE_COUNTS = {"improving": 10, "declining": 10, "gaps": 3}
POOR_PERFORMERS = (3, 4)  # inclusive range for how many poor performers
# Sources a "gaps" department misses, one pattern per gap department.
GAP_PATTERNS = (("budget",), ("surveys", "budget"), ("service_transactions", "surveys"))
SMALL_SURVEY_DEPARTMENTS = 3

WEEKEND_WEIGHT = 0.04  # 周末不打烊: a few cases are received on weekends
NO_RATING_SHARE = 0.2
# Latent cut points between the five rating levels (logistic noise around quality).
RATING_CUTS = np.array([-4.2, -3.2, -2.1, -0.6])
COMMENT_SHARE = np.array([0.9, 0.8, 0.35, 0.25, 0.3, 0.0])  # by rating level
LATE_RATING_PENALTY = 1.2
# A satisfied rating whose comment still complains (a citizen's honest mix).
NATURAL_MISMATCH = 0.03
# Seconds from completion to rating: at the counter's rating pad within minutes; online
# (a text message's link) within hours. Lognormal: (median seconds, sigma).
RATING_DELAY = {"offline": (60.0, 0.8), "online": (3 * 3600.0, 1.2)}

# Working hours: 09:00-12:00 and 13:30-17:30, i.e. 7 hours a working day.
MORNING = (9 * 3600, 12 * 3600)
AFTERNOON = (13 * 3600 + 1800, 17 * 3600 + 1800)
WORK_SECONDS_PER_DAY = (MORNING[1] - MORNING[0]) + (AFTERNOON[1] - AFTERNOON[0])

HOTLINE_PER_TRANSACTION = 0.04
HOTLINE_BASE_PER_MONTH = 1.5
HOTLINE_CATEGORIES = ("咨询", "投诉", "求助", "建议", "举报")
HOTLINE_CATEGORY_SHARE = np.array([0.35, 0.28, 0.15, 0.10, 0.12])
HOTLINE_VERACITY = ("属实", "部分属实", "不属实")

# --------------------------------------------------------------------------
# Text pools
# --------------------------------------------------------------------------

PRAISE = (
    "办事效率高",
    "工作人员热情耐心",
    "一次办好，很方便",
    "流程简便，点赞",
    "网上办理很便捷",
    "材料比以前少了很多",
    "服务周到细致",
)
NEUTRAL = ("等待时间略长", "总体还行", "现场指引不够清楚", "系统有点卡", "希望再简化流程")
COMPLAINTS = (
    "窗口人员态度差",
    "排队时间太长",
    "材料反复要求补交",
    "超过承诺时限未办结",
    "多次跑腿才办成",
    "网上申报系统无法提交",
    "电话咨询无人接听",
    "前后告知内容不一致",
)

HOTLINE_TEMPLATES = {
    "咨询": ("咨询{item}需要准备哪些材料", "咨询{item}的办理流程", "咨询{item}的办理进度"),
    "投诉": (
        "反映{item}超过承诺时限仍未办结",
        "投诉办理{item}时窗口工作人员态度生硬",
        "反映办理{item}时材料被反复要求补交",
    ),
    "求助": ("请求协助加快{item}办理", "求助{item}网上申报无法提交"),
    "建议": ("建议{item}增加网上办理渠道", "建议延长{item}窗口周末服务时间"),
    "举报": ("举报有人冒用他人身份办理{item}", "举报办理{item}过程中有人违规收费"),
}

SURVEY_GOOD = ("工作人员服务热情，值得肯定", "办事效率明显提高", "政策宣传到位", "希望继续保持")
SURVEY_NEUTRAL = ("希望进一步简化办事流程", "建议增加自助服务设备", "希望加强政策解读", "建议延长午间服务时间")
SURVEY_BAD = (
    "个别工作人员业务不熟练",
    "网上办事系统经常卡顿",
    "办事需要多次跑腿",
    "咨询电话难以接通",
    "答复推诿，缺乏担当",
)

LEADER_REMARKS = (  # (minimum score, remarks)
    (90.0, ("工作成效突出，群众获得感明显增强，望继续保持。", "各项重点任务推进有力，创新举措成效显著。")),
    (80.0, ("各项工作有序推进，完成情况良好，个别指标仍有提升空间。", "工作总体扎实，服务质量稳步提升。")),
    (70.0, ("工作推进力度不够，部分任务进度滞后，需加强统筹。", "群众反映问题整改不够及时，需进一步压实责任。")),
    (0.0, ("工作推进迟缓，群众反映问题较多，须限期整改。", "多项指标排名靠后，需深刻反思、全面整改。")),
)

PROJECT_TEMPLATES = {  # (project suffix, milestone kind)
    "窗口服务类": (
        ("一网通办能力提升工程", "it"),
        ("自助服务终端进社区项目", "it"),
        ("窗口服务标准化建设", "reform"),
        ("高效办成一件事改革", "reform"),
    ),
    "执法监管类": (("非现场监管系统建设", "it"), ("综合执法指挥平台升级", "it"), ("执法规范化建设专项行动", "reform")),
    "综合管理类": (("机关数字化办公系统升级", "it"), ("专项改革任务", "reform")),
    "经济发展类": (
        ("重点产业园区基础设施建设", "build"),
        ("产业招商专项行动", "reform"),
        ("城市更新示范项目", "build"),
        ("营商环境优化提升行动", "reform"),
        ("数字经济公共服务平台建设", "it"),
    ),
    "社会事业类": (("公共服务设施改扩建工程", "build"), ("民生服务信息系统建设", "it"), ("服务质量提升行动", "reform")),
}
MILESTONES = {
    "it": ("需求调研完成", "建设方案评审通过", "招标采购完成", "系统开发完成", "试运行", "正式上线", "项目验收"),
    "build": ("可行性研究报告批复", "初步设计批复", "施工招标完成", "开工建设", "主体工程完工", "竣工验收"),
    "reform": ("实施方案印发", "试点启动", "中期评估", "全面推广", "总结评估"),
}

BONUS_REASONS = (
    "工作经验被省级以上部门推广",
    "获得国家级表彰",
    "承担市委市政府重大专项任务成效突出",
    "改革创新项目获批省级试点",
    "政务信息被省政府采用",
)
PENALTY_REASONS = (
    "督查通报问题整改不到位",
    "12345热线工单办理超时被通报",
    "信访事项办理不及时",
    "重点项目进度滞后被约谈",
    "政务公开工作考核不达标",
    "安全检查发现重大隐患未及时整改",
)
VETO_REASONS = {"safety": "发生重大安全生产责任事故", "discipline": "发生严重违纪违法问题造成恶劣影响"}
DOCUMENT_PREFIXES = ("市政办", "市委办", "市考核办", "市督查办")
BONUS_POINTS = (0.5, 1.0, 1.5, 2.0, 3.0)
PENALTY_POINTS = (-0.5, -1.0, -1.5, -2.0)

# A writer's progress callback receives its running row count.
Report = Callable[[int], None]

# Stable integer keys mixed into the seed so each source has its own stream.
CREATOR = "govperf sample generator"
_STREAMS = {
    "model": 1,
    "allocation": 2,
    "projects": 3,
    "adjustments": 4,
    "leader_reviews": 5,
    "service_transactions": 11,
    "hotline_complaints": 12,
    "surveys": 13,
    "budget": 14,
    "delivery": 21,
    "ratings": 22,
    "gaming": 23,
    "anomalies": 24,
}

# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


@dataclass
class GenerationSummary:
    """What ``generate_city`` wrote.

    ``departments`` counts departments active somewhere in the range.
    ``profiles`` maps department id to its behaviour profile; ``gaps`` maps a
    gap department's id to ``{source: [YYYYMM, ...]}`` months deliberately left
    without rows (use it to tell planned gaps from lost data).
    """

    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    departments: int = 0
    profiles: dict[str, str] = field(default_factory=dict)
    gaps: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # screen (GAMING_SCREENS) -> ids of the departments where that rating gaming is planted
    gaming: dict[str, list[str]] = field(default_factory=dict)
    # anomalies planted in indicator series (pipelines/sample/anomalies.py): kind,
    # department_id, first_month, last_month (YYYY-MM), indicator_id, direction
    anomalies: list[dict] = field(default_factory=list)


def generate_city(
    out_dir: Path,
    *,
    departments_yaml: Path,
    seed: int = 20250101,
    first_month: str = "2025-01",
    last_month: str = "2026-03",
    transactions: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> GenerationSummary:
    """Write the sample city's extracts under ``out_dir`` and summarise them.

    ``transactions`` is the exact total number of service transaction rows over
    all months (default ``DEFAULT_TRANSACTIONS``).  ``progress(source, rows)``
    receives the running row count of the source being written.  Existing files
    with the same names are overwritten; nothing else in ``out_dir`` is touched.
    """
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    out_dir = Path(out_dir)
    calendar = Calendar(_parse_month(first_month), _parse_month(last_month))
    departments = load_departments(Path(departments_yaml))
    city = CityModel(departments, calendar, seed)
    city.allocate_transactions(DEFAULT_TRANSACTIONS if transactions is None else transactions)

    report = progress or (lambda label, rows: None)
    summary = GenerationSummary(
        departments=int(city.active_in_month.any(axis=1).sum()),
        profiles={d.id: city.profiles[i] for i, d in enumerate(departments)},
        gaps=city.gap_summary(),
        gaming={screen: [departments[i].id for i in chosen] for screen, chosen in city.gaming.items()},
        anomalies=planted_anomalies.summary(
            city.planted, [d.id for d in departments], [f"{m.year}-{m.month:02d}" for m in city.months]
        ),
    )
    writers = (
        ("service_transactions", write_service_transactions),
        ("hotline_complaints", write_hotline_complaints),
        ("surveys", write_surveys),
        ("leader_reviews", write_leader_reviews),
        ("budget", write_budget),
        ("projects", write_projects),
        ("adjustments", write_adjustments),
    )
    for source, writer in writers:
        target = out_dir / source
        target.mkdir(parents=True, exist_ok=True)
        files, rows = writer(city, target, lambda n, source=source: report(source, n))
        _stamp_deliveries(files, seed)
        summary.files.extend(files)
        summary.rows[source] = rows
    return summary


# --------------------------------------------------------------------------
# Department registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    peer_group: str
    parent_id: str | None
    valid_from: dt.date
    valid_to: dt.date | None
    aliases: tuple[str, ...]
    merged_into: str | None = None

    @property
    def short_name(self) -> str:
        """Shortest 市-prefixed alias (市人社局), used in project names."""
        candidates = [a for a in self.aliases if a.startswith("市")]
        return min(candidates, key=len) if candidates else self.name


def load_departments(path: Path) -> list[Department]:
    """Read and sanity-check departments.yaml (the generator trusts nothing else)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    departments = [
        Department(
            id=str(entry["id"]),
            name=str(entry["name"]),
            peer_group=str(entry["peer_group"]),
            parent_id=entry.get("parent_id"),
            valid_from=entry["valid_from"],
            valid_to=entry.get("valid_to"),
            aliases=tuple(entry.get("aliases") or ()),
            merged_into=entry.get("merged_into"),
        )
        for entry in document["departments"]
    ]
    ids = {d.id for d in departments}
    if len(ids) != len(departments) or len({d.name for d in departments}) != len(departments):
        raise ValueError(f"{path}: department ids and names must be unique")
    for d in departments:
        if d.peer_group not in PEER_GROUPS:
            raise ValueError(f"{path}: {d.id} has unknown peer_group {d.peer_group!r}")
        if not isinstance(d.valid_from, dt.date) or (d.valid_to is not None and d.valid_to < d.valid_from):
            raise ValueError(f"{path}: {d.id} has an invalid validity period")
        for ref in (d.parent_id, d.merged_into):
            if ref is not None and ref not in ids:
                raise ValueError(f"{path}: {d.id} refers to unknown department {ref}")
        if d.merged_into is not None and d.valid_to is None:
            raise ValueError(f"{path}: {d.id} is merged but has no valid_to")
    return departments


# --------------------------------------------------------------------------
# Calendar: days are integers counted from the first day of the first month
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    index: int
    year: int
    month: int
    first_day: int  # day number of the 1st
    n_days: int

    @property
    def yyyymm(self) -> str:
        return f"{self.year}{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"


def _parse_month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"month must look like 2025-03, got {text!r}") from None


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


class Calendar:
    """Day numbering, month layout, working days and preformatted strings."""

    # Completion times are computed up to this long after the extract day;
    # anything later is open anyway.
    HORIZON_DAYS = 400

    def __init__(self, first: dt.date, last: dt.date):
        if last < first:
            raise ValueError("last_month is before first_month")
        self.origin = first
        self.months: list[Month] = []
        cursor = first
        while cursor <= last:
            following = _add_months(cursor, 1)
            self.months.append(
                Month(len(self.months), cursor.year, cursor.month, self.day_number(cursor), (following - cursor).days)
            )
            cursor = following
        self.extract_day = self.day_number(cursor)  # first day after the range
        n_days = self.extract_day + self.HORIZON_DAYS
        self.dates = [first + dt.timedelta(days=i) for i in range(n_days)]
        self.date_text = np.array([d.isoformat() for d in self.dates], dtype=object)
        self.date_prefix = np.array([d.isoformat() + " " for d in self.dates], dtype=object)
        self.is_workday = np.array([d.weekday() < 5 for d in self.dates])
        self.workdays = np.flatnonzero(self.is_workday)
        # Ordinal of the same (or next) working day for every day.
        self.next_workday = np.searchsorted(self.workdays, np.arange(n_days))

    def day_number(self, day: dt.date) -> int:
        return (day - self.origin).days

    def work_position(self, day: int | np.ndarray, clock: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(working-day ordinal, working seconds already gone that day) at a moment.

        Moments outside working hours count as the next working moment.
        """
        offset = np.clip(clock - MORNING[0], 0, MORNING[1] - MORNING[0]) + np.clip(
            clock - AFTERNOON[0], 0, AFTERNOON[1] - AFTERNOON[0]
        )
        return np.broadcast_to(self.next_workday[day], clock.shape), np.where(self.is_workday[day], offset, 0)

    def advance_work_time(
        self, ordinal: np.ndarray, offset: np.ndarray, seconds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Working position ``seconds`` of working time later (never earlier)."""
        total = offset + seconds
        return (
            np.minimum(ordinal + total // WORK_SECONDS_PER_DAY, self.workdays.size - 1),
            total % WORK_SECONDS_PER_DAY,
        )

    def moment(self, ordinal: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(day number, clock second) of a working position."""
        morning = MORNING[1] - MORNING[0]
        clock = np.where(offset < morning, MORNING[0] + offset, AFTERNOON[0] + offset - morning)
        return self.workdays[ordinal], clock


TIME_OF_DAY = np.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=object)


class ClockProfile:
    """Maps uniform numbers in [0, 1) to seconds of the day, monotonically.

    Monotonic so that sorted uniforms give sorted times: rows can be generated
    in time order without sorting whole days.
    """

    def __init__(self, segments: Sequence[tuple[int, int, float]]):
        self.starts = np.array([s for s, _, _ in segments], dtype=np.float64)
        self.lengths = np.array([e - s for s, e, _ in segments], dtype=np.float64)
        weights = np.array([w for _, _, w in segments], dtype=np.float64)
        self.cumulative = np.concatenate([[0.0], np.cumsum(weights / weights.sum())])

    def seconds(self, u: np.ndarray) -> np.ndarray:
        segment = np.clip(np.searchsorted(self.cumulative, u, side="right") - 1, 0, self.lengths.size - 1)
        within = (u - self.cumulative[segment]) / (self.cumulative[segment + 1] - self.cumulative[segment])
        clock = self.starts[segment] + np.clip(within, 0.0, 1.0) * self.lengths[segment]
        end = self.starts[segment] + self.lengths[segment] - 1
        return np.minimum(clock.astype(np.int64), end.astype(np.int64))


# Service windows are busier in the morning.
RECEIPT_CLOCK = ClockProfile([(*MORNING, 0.5), (*AFTERNOON, 0.5)])
# 12345 answers around the clock, mostly in the daytime.
HOTLINE_CLOCK = ClockProfile(
    [
        (0, 7 * 3600, 0.03),
        (7 * 3600, 9 * 3600, 0.10),
        (9 * 3600, 12 * 3600, 0.30),
        (12 * 3600, 14 * 3600, 0.12),
        (14 * 3600, 18 * 3600, 0.30),
        (18 * 3600, 22 * 3600, 0.12),
        (22 * 3600, 86400, 0.03),
    ]
)


# --------------------------------------------------------------------------
# City model: everything decided once, before any file is written
# --------------------------------------------------------------------------


def _rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *keys])


@dataclass(frozen=True)
class ServiceItem:
    department: int
    name: str
    time_limit: int  # 承诺时限, working days
    materials: int  # 应交材料数
    reduction_share: float  # chance each material is waived (告知承诺, data sharing)
    online_share: float


class CityModel:
    """Departments, their profiles and latent quality, volumes and items."""

    def __init__(self, departments: list[Department], calendar: Calendar, seed: int):
        self.departments = departments
        self.calendar = calendar
        self.seed = seed
        self.months = calendar.months
        rng = _rng(seed, "model")
        self._index = {d.id: i for i, d in enumerate(departments)}
        self.names = np.array([d.name for d in departments], dtype=object)
        self.ids = np.array([d.id for d in departments], dtype=object)

        self._build_validity()
        self._choose_profiles(rng)
        self._build_quality(rng)
        self._build_items(rng)
        self._build_volumes(rng)
        self._build_gaps(rng)
        self._build_survey_sizes(rng)
        self._choose_gaming()  # after the volumes: only busier departments are gamed
        self._choose_anomalies()  # after the gaming: only clean departments get one
        self.annual_budget = np.array([GROUP_BUDGET[d.peer_group] for d in departments]) * rng.lognormal(
            0.0, 0.5, len(departments)
        )
        self.transactions: np.ndarray | None = None

    # -- validity -----------------------------------------------------------

    def _build_validity(self) -> None:
        cal = self.calendar
        far = len(cal.dates) + 1
        self.valid_from = np.array([cal.day_number(d.valid_from) for d in self.departments])
        self.valid_to = np.array([far if d.valid_to is None else cal.day_number(d.valid_to) for d in self.departments])
        month_starts = np.array([m.first_day for m in self.months])
        month_ends = np.array([m.first_day + m.n_days - 1 for m in self.months])
        self.active_in_month = (self.valid_from[:, None] <= month_ends[None, :]) & (
            self.valid_to[:, None] >= month_starts[None, :]
        )
        self.active_whole_range = (self.valid_from <= 0) & (self.valid_to >= cal.extract_day - 1)
        merged = [(i, self._index[d.merged_into]) for i, d in enumerate(self.departments) if d.merged_into]
        self.mergers = merged  # (merged department, absorbing department)

    def valid_days(self, month: Month) -> np.ndarray:
        """(departments, days of month) mask of days each department exists."""
        days = np.arange(month.first_day, month.first_day + month.n_days)
        return (days[None, :] >= self.valid_from[:, None]) & (days[None, :] <= self.valid_to[:, None])

    def _weekday_weights(self, month: Month) -> np.ndarray:
        """Relative case intake of each day of the month (weekends are quiet)."""
        days = np.arange(month.first_day, month.first_day + month.n_days)
        return np.where(self.calendar.is_workday[days], 1.0, WEEKEND_WEIGHT)

    def receipt_day_weights(self, month: Month) -> np.ndarray:
        return self.valid_days(month) * self._weekday_weights(month)[None, :]

    # -- profiles and quality ----------------------------------------------

    def _choose_profiles(self, rng: np.random.Generator) -> None:
        involved = {i for pair in self.mergers for i in pair}
        candidates = [i for i in range(len(self.departments)) if self.active_whole_range[i] and i not in involved]
        order = [candidates[k] for k in rng.permutation(len(candidates))]
        self.profiles = ["stable"] * len(self.departments)
        counts = [("poor", int(rng.integers(POOR_PERFORMERS[0], POOR_PERFORMERS[1] + 1)))]
        counts += list(PROFILE_COUNTS.items())
        for profile, count in counts:
            chosen, order = order[:count], order[count:]
            for i in chosen:
                self.profiles[i] = profile

    def _choose_gaming(self) -> None:
        """The departments that game their ratings (pipelines/sample/gaming.py)."""
        self.gaming = choose_gaming(
            _rng(self.seed, "gaming"),
            [d.peer_group for d in self.departments],
            self.base_volume,
            [
                i
                for i, active in enumerate(self.active_whole_range)
                if active and self.profiles[i] != "gaps" and not any(i in pair for pair in self.mergers)
            ],
        )
        self.pasted_praise = pasted_praise([d.short_name for d in self.departments])
        self.gamed = np.full(len(self.departments), "", dtype=object)
        for screen, chosen in self.gaming.items():
            self.gamed[chosen] = screen

    def _choose_anomalies(self) -> None:
        """Spikes and level shifts planted in clean series (pipelines/sample/anomalies.py)."""
        gamed = {i for chosen in self.gaming.values() for i in chosen}
        eligible = [
            i
            for i, active in enumerate(self.active_whole_range)
            if active and self.profiles[i] == "stable" and i not in gamed and not any(i in p for p in self.mergers)
        ]
        self.planted = planted_anomalies.choose_anomalies(
            _rng(self.seed, "anomalies"), len(self.months), self.base_volume, eligible
        )
        self.slowdown, self.online_push = planted_anomalies.plant_arrays(
            self.planted, len(self.departments), len(self.months)
        )

    def departments_with(self, profile: str) -> list[int]:
        return [i for i, p in enumerate(self.profiles) if p == profile]

    def _build_quality(self, rng: np.random.Generator) -> None:
        n, m = len(self.departments), len(self.months)
        base = np.array([GROUP_QUALITY[d.peer_group] for d in self.departments]) + rng.normal(0, 0.3, n)
        progress = np.linspace(0.0, 1.0, m) if m > 1 else np.zeros(1)
        shape = {
            "stable": np.zeros(m),
            "gaps": np.zeros(m),
            "improving": -0.9 + 1.8 * progress,
            "declining": 0.7 - 1.8 * progress,
            "poor": np.full(m, -1.8),
        }
        trend = np.array([shape[p] for p in self.profiles])
        self.quality = np.clip(base[:, None] + trend + rng.normal(0, 0.12, (n, m)), -3.0, 2.0)

    # -- service items -----------------------------------------------------

    def _build_items(self, rng: np.random.Generator) -> None:
        self.items: list[ServiceItem] = []
        self.department_items: list[list[int]] = []
        self.department_item_weights: list[np.ndarray] = []
        for i, d in enumerate(self.departments):
            spec = SERVICE_ITEMS.get(d.name, GENERIC_ITEMS[d.peer_group])
            own = []
            for entry in spec.split(", "):
                name, limit = entry.rsplit("/", 1)
                reformed = rng.random() < 0.35
                own.append(len(self.items))
                self.items.append(
                    ServiceItem(
                        department=i,
                        name=name,
                        time_limit=int(limit),
                        materials=int(1 + rng.binomial(11, 0.35)),
                        reduction_share=0.5 if reformed else 0.03,
                        online_share=float(rng.uniform(0.15, 0.85)),
                    )
                )
            self.department_items.append(own)
            # A few items dominate each department's workload.
            self.department_item_weights.append(rng.dirichlet(np.full(len(own), 0.8)))
        self.item_names = np.array([it.name for it in self.items], dtype=object)
        self.item_limit = np.array([it.time_limit for it in self.items])
        self.item_materials = np.array([it.materials for it in self.items])
        self.item_reduction = np.array([it.reduction_share for it in self.items])
        self.item_online = np.array([it.online_share for it in self.items])

    # -- volumes -----------------------------------------------------------

    def _build_volumes(self, rng: np.random.Generator) -> None:
        n = len(self.departments)
        self.base_volume = np.array([GROUP_VOLUME[d.peer_group] for d in self.departments]) * rng.lognormal(0, 0.5, n)
        # Share of each month's intake a department is around for, and (for a
        # merged department) the share its absorbing department handles for it.
        self.valid_share = np.zeros((n, len(self.months)))
        self.absorbed_share = np.zeros((n, len(self.months)))
        for m in self.months:
            weights = self._weekday_weights(m)
            valid = self.valid_days(m)
            self.valid_share[:, m.index] = (valid * weights).sum(axis=1) / weights.sum()
            days = np.arange(m.first_day, m.first_day + m.n_days)
            for merged, absorbing in self.mergers:
                taken_over = (days > self.valid_to[merged]) & valid[absorbing]
                self.absorbed_share[merged, m.index] = (taken_over * weights).sum() / weights.sum()
        self.item_tables = [self._item_table(m) for m in self.months]

    def _item_table(self, month: Month) -> tuple[np.ndarray, np.ndarray]:
        """(departments, k) item indices and cumulative probabilities for a month."""
        lists, weights = [], []
        for i in range(len(self.departments)):
            items = list(self.department_items[i])
            w = list(self.department_item_weights[i] * self.base_volume[i])
            for merged, absorbing in self.mergers:
                share = self.absorbed_share[merged, month.index]
                if absorbing == i and share > 0:
                    items += self.department_items[merged]
                    w += list(self.department_item_weights[merged] * self.base_volume[merged] * share)
            lists.append(items)
            weights.append(np.array(w) / np.sum(w))
        width = max(len(x) for x in lists)
        table = np.zeros((len(lists), width), dtype=np.int64)
        cumulative = np.ones((len(lists), width))
        for i, (items, w) in enumerate(zip(lists, weights)):
            table[i, : len(items)] = items
            table[i, len(items) :] = items[-1]
            cumulative[i, : len(items)] = np.cumsum(w)
            cumulative[i, len(items) - 1 :] = 1.0
        return table, cumulative

    def pick_items(self, departments: np.ndarray, month: Month, rng: np.random.Generator) -> np.ndarray:
        table, cumulative = self.item_tables[month.index]
        u = rng.random(departments.size)
        column = (u[:, None] >= cumulative[departments]).sum(axis=1)
        return table[departments, column]

    def monthly_volume_weights(self) -> np.ndarray:
        season = np.array([MONTH_VOLUME[m.month] for m in self.months])
        weights = self.base_volume[:, None] * season[None, :] * self.valid_share
        for merged, absorbing in self.mergers:
            weights[absorbing] += self.base_volume[merged] * season * self.absorbed_share[merged]
        return weights * ~self.gap_mask["service_transactions"]

    def allocate_transactions(self, total: int) -> None:
        """Split exactly ``total`` cases over (department, month) cells.

        Every active cell gets at least one case so each active department shows
        up every month; the rest follows the volume weights.
        """
        weights = self.monthly_volume_weights()
        active = weights > 0
        minimum = int(active.sum())
        if total < minimum:
            raise ValueError(f"transactions must be at least {minimum} (one per active department-month)")
        rng = _rng(self.seed, "allocation")
        spread = rng.multinomial(total - minimum, (weights / weights.sum()).ravel()).reshape(weights.shape)
        self.transactions = spread + active

    # -- gaps and survey sizes ---------------------------------------------

    def _build_gaps(self, rng: np.random.Generator) -> None:
        n, m = len(self.departments), len(self.months)
        self.gap_mask = {source: np.zeros((n, m), dtype=bool) for source in SOURCES}
        interior = list(range(1, m - 1))
        if not interior:
            return  # too short a range to leave a month out in the middle
        for i, pattern in zip(self.departments_with("gaps"), GAP_PATTERNS):
            length = min(int(rng.integers(1, 3)), len(interior))
            start = int(rng.choice(interior[: len(interior) - length + 1]))
            for source in pattern:
                self.gap_mask[source][i, start : start + length] = True

    def gap_summary(self) -> dict[str, dict[str, list[str]]]:
        summary: dict[str, dict[str, list[str]]] = {}
        for source, mask in self.gap_mask.items():
            for i, m in zip(*np.nonzero(mask)):
                summary.setdefault(self.departments[i].id, {}).setdefault(source, []).append(self.months[m].yyyymm)
        return summary

    def _build_survey_sizes(self, rng: np.random.Generator) -> None:
        # Departments with many service users are sampled more: most get 20-50
        # responses, the busiest window departments up to 120.
        log_volume = np.log(self.base_volume)
        scale = (log_volume - log_volume.min()) / max(np.ptp(log_volume), 1e-9)
        n, m = len(self.departments), len(self.months)
        sizes = np.clip(np.rint(22 + 98 * scale[:, None] ** 3 + rng.normal(0, 6, (n, m))), 20, 120)
        # A few low-profile departments sometimes get too few respondents.
        quiet = [i for i in np.argsort(self.base_volume) if self.profiles[i] != "gaps" and self.active_whole_range[i]]
        for i in quiet[:SMALL_SURVEY_DEPARTMENTS]:
            few = rng.random(m) < 0.4
            sizes[i, few] = rng.integers(3, 10, few.sum())
        self.survey_sizes = (sizes * self.active_in_month * ~self.gap_mask["surveys"]).astype(np.int64)


# --------------------------------------------------------------------------
# Writing helpers
# --------------------------------------------------------------------------


class _ProgressCounter:
    """Counts rows for one source and reports every PROGRESS_EVERY rows."""

    def __init__(self, report: Report):
        self.report = report
        self.rows = 0
        self._last = 0

    def add(self, rows: int) -> None:
        self.rows += rows
        if self.rows - self._last >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        self._last = self.rows
        self.report(self.rows)


def _daily_batches(
    counts: np.ndarray, day_weights: np.ndarray, rng: np.random.Generator, max_rows: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Spread each department's monthly count over days; yield time-ordered batches.

    Yields (day of month, department per row, sorted uniforms in [0, 1)).  A day
    with more than ``max_rows`` rows is cut into equal slices of the day so no
    batch is ever much bigger than ``max_rows``.
    """
    totals = day_weights.sum(axis=1, keepdims=True)
    if np.any((counts > 0) & (totals[:, 0] == 0)):
        raise RuntimeError("rows allocated to a department with no valid day")
    uniform = np.full_like(day_weights, 1.0 / day_weights.shape[1])
    per_day = rng.multinomial(counts, np.divide(day_weights, totals, out=uniform, where=totals > 0))
    departments = np.arange(counts.size)
    for day in range(day_weights.shape[1]):
        column = per_day[:, day]
        rows = int(column.sum())
        if rows == 0:
            continue
        slices = -(-rows // max_rows)
        split = column[:, None] if slices == 1 else rng.multinomial(column, np.full(slices, 1.0 / slices))
        for s in range(slices):
            batch = np.repeat(departments, split[:, s])
            rng.shuffle(batch)
            yield day, batch, (s + np.sort(rng.random(batch.size))) / slices


def _write_daily_csv(
    path: Path,
    header: list[str],
    encoding: str,
    line_end: str,
    counts: np.ndarray,
    day_weights: np.ndarray,
    rng: np.random.Generator,
    build_columns: Callable[[int, np.ndarray, np.ndarray, int], list[list]],
    counter: _ProgressCounter,
) -> None:
    """Stream one month of rows to CSV, batch by batch, numbering rows from 1.

    ``build_columns(day of month, department per row, sorted uniforms, first
    row number)`` turns a batch into CSV columns.
    """
    handle, writer = _open_csv(path, encoding, line_end)
    with handle:
        writer.writerow(header)
        next_number = 1
        for day, departments, u in _daily_batches(counts, day_weights, rng, CHUNK_ROWS):
            writer.writerows(zip(*build_columns(day, departments, u, next_number)))
            next_number += departments.size
            counter.add(departments.size)


def _pick(options: Sequence[str], rng: np.random.Generator, size: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(len(options), size=size)]


def _open_csv(path: Path, encoding: str, line_end: str):
    handle = path.open("w", encoding=encoding, newline="")
    return handle, csv.writer(handle, lineterminator=line_end)


def _write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8", line_end: str = "\n") -> None:
    handle, writer = _open_csv(path, encoding, line_end)
    with handle:
        writer.writerow(header)
        writer.writerows(rows)


def _stamp_deliveries(files: list[Path], seed: int) -> None:
    """Set each file's modification time to when the department "delivered" it,
    which govperf reads as the submission time: 09:00 on day 1-4 after the period
    ends, except about one file in twelve, delivered a week later (late)."""
    for path in files:
        match = re.search(r"(\d{4})(?:Q([1-4])|(\d{2}))", path.stem)
        if not match:
            continue
        year, quarter, month = int(match[1]), match[2], match[3]
        last_month = 3 * int(quarter) if quarter else int(month)
        after = dt.date(year + last_month // 12, last_month % 12 + 1, 1)
        rng = _rng(seed, "delivery", zlib.crc32(path.name.encode()))
        delay = int(rng.integers(7, 10)) if rng.random() < 1 / 12 else int(rng.integers(0, 4))
        delivered = dt.datetime.combine(after + dt.timedelta(days=delay), dt.time(9, 0))
        os.utime(path, (delivered.timestamp(), delivered.timestamp()))


def _stamp_after(calendar: Calendar, month: Month) -> dt.datetime:
    """Files for a month are "produced" at 09:00 on the first day after it."""
    produced = calendar.dates[month.first_day + month.n_days]
    return dt.datetime(produced.year, produced.month, produced.day, 9, 0, 0)


# --------------------------------------------------------------------------
# 1. Service transactions (好差评明细)
# --------------------------------------------------------------------------


def write_service_transactions(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    files = []
    for month in city.months:
        path = target / f"好差评明细_{month.yyyymm}.csv"
        rng = _rng(city.seed, "service_transactions", month.index)
        _write_daily_csv(
            path,
            TRANSACTION_COLUMNS,
            "gbk",
            "\r\n",
            city.transactions[:, month.index],
            city.receipt_day_weights(month),
            rng,
            partial(_transaction_columns, city, month, rng),
            counter,
        )
        files.append(path)
        counter.flush()
    return files, counter.rows


def _transaction_columns(
    city: CityModel,
    month: Month,
    rng: np.random.Generator,
    day_of_month: int,
    departments: np.ndarray,
    u: np.ndarray,
    first_number: int,
) -> list[list]:
    """One time-ordered batch of cases received on one day, as CSV columns."""
    cal = city.calendar
    day = month.first_day + day_of_month
    n = departments.size
    clock = RECEIPT_CLOCK.seconds(u)
    items = city.pick_items(departments, month, rng)
    quality = city.quality[departments, month.index]

    # 网办 grows slowly month by month (the "一网通办" push).
    # Planted anomalies (pipelines/sample/anomalies.py) change values, never the draws.
    push, slowdown = city.online_push[departments, month.index], city.slowdown[departments, month.index]
    online = rng.random(n) < np.minimum(city.item_online[items] + 0.01 * month.index + push, 0.95)
    limit = city.item_limit[items]
    required = city.item_materials[items]
    submitted = required - rng.binomial(required - 1, city.item_reduction[items])

    # Working hours needed: lognormal, median a quality-dependent fraction of the limit.
    median_hours = limit * (WORK_SECONDS_PER_DAY / 3600) * np.exp(-1.3 - 0.35 * quality)
    hours = slowdown * median_hours * np.exp(0.75 * rng.standard_normal(n))
    work_seconds = np.clip(hours * 3600, 60, limit * WORK_SECONDS_PER_DAY * 6).astype(np.int64)
    late = work_seconds > limit * WORK_SECONDS_PER_DAY
    # Weekend receipts start being worked on the next working day.
    received = cal.work_position(day, clock)
    done = cal.advance_work_time(*received, work_seconds)
    done_day, done_clock = cal.moment(*done)
    closed = done_day < cal.extract_day

    # Ratings only for finished cases; late cases are rated worse.
    rated = closed & (rng.random(n) >= NO_RATING_SHARE)
    latent = quality - LATE_RATING_PENALTY * late + rng.logistic(size=n)
    level = np.where(rated, np.searchsorted(RATING_CUTS, latent), 5)
    has_comment = rng.random(n) < COMMENT_SHARE[level]
    comment = np.where(
        level >= 3, _pick(PRAISE, rng, n), np.where(level == 2, _pick(NEUTRAL, rng, n), _pick(COMPLAINTS, rng, n))
    )
    # Rating times and gaming draw from streams of their own: the draws above and
    # below, and so every other column, stay as they were before these existed.
    g = _rng(city.seed, "ratings", month.index, first_number)
    comment = np.where((level >= 3) & (g.random(n) < NATURAL_MISMATCH), _pick(COMPLAINTS, g, n), comment)
    gamed = city.gamed[departments]
    volume = city.transactions[departments, month.index]
    level, comment, has_comment = game_ratings(
        gamed, volume, level, comment, has_comment, city.pasted_praise[departments], COMPLAINTS, g
    )
    comment = np.where(has_comment, comment, "")
    rated_text = _rating_times(cal, month, gamed, volume, rated, online, done_day, done_clock, g)

    # Bad ratings are followed up: rectification (if done by the extract day) and appeals.
    bad = level <= 1
    rectify_seconds = (3600 * rng.lognormal(np.log(10), 0.8, n)).astype(np.int64)
    fix_day, fix_clock = cal.moment(*cal.advance_work_time(*done, rectify_seconds))
    rectified = bad & (rng.random(n) < np.clip(0.8 + 0.08 * quality, 0.4, 0.97)) & (fix_day < cal.extract_day)
    appealed = bad & (rng.random(n) < 0.15)
    upheld = appealed & (rng.random(n) < 0.35)

    prefix, case_prefix = cal.date_prefix[day], f"SX{month.yyyymm}"
    return [
        [f"{case_prefix}{k:06d}" for k in range(first_number, first_number + n)],
        city.ids[departments].tolist(),
        city.names[departments].tolist(),
        city.item_names[items].tolist(),
        np.where(online, "网办", "窗口").tolist(),
        [prefix + t for t in TIME_OF_DAY[clock].tolist()],
        np.where(closed, cal.date_prefix[done_day] + TIME_OF_DAY[done_clock], "").tolist(),
        limit.tolist(),
        required.tolist(),
        submitted.tolist(),
        np.array(RATING_LEVELS, dtype=object)[level].tolist(),
        comment.tolist(),
        rated_text,
        np.where(bad, np.where(rectified, "是", "否"), "").tolist(),
        np.where(rectified, cal.date_prefix[fix_day] + TIME_OF_DAY[fix_clock], "").tolist(),
        np.where(bad, np.where(appealed, "是", "否"), "").tolist(),
        np.where(appealed, np.where(upheld, "申诉成立", "申诉不成立"), "").tolist(),
    ]


def _rating_times(
    cal: Calendar,
    month: Month,
    gamed: np.ndarray,
    volume: np.ndarray,
    rated: np.ndarray,
    online: np.ndarray,
    done_day: np.ndarray,
    done_clock: np.ndarray,
    rng: np.random.Generator,
) -> list[str]:
    """评价时间 of each rated case: a delay after completion (RATING_DELAY), with the
    gamed departments' instant ratings and bursts. Left blank when the rating would
    fall after the month, which the month's file (delivered after it) cannot know."""
    n = rated.size
    median = np.where(online, RATING_DELAY["online"][0], RATING_DELAY["offline"][0])
    sigma = np.where(online, RATING_DELAY["online"][1], RATING_DELAY["offline"][1])
    delay = median * np.exp(sigma * rng.standard_normal(n))
    counter = rated & ~online
    u = rng.random(n)
    # a rated counter case is about 0.3 of the department's cases
    fast = (gamed == "rating_fast") & counter & (u < np.maximum(FAST_SHARE, FAST_RATINGS / (0.3 * volume)))
    delay = np.where(fast, rng.uniform(1, 8, n), delay)
    at = done_day.astype(np.int64) * 86400 + done_clock + delay.astype(np.int64)
    # one burst a month: the month's last working day, 16:00, five minutes of ratings
    last_day = max(d for d in range(month.first_day, month.first_day + month.n_days) if cal.is_workday[d])
    burst = last_day * 86400 + 16 * 3600
    # about BURST_RATINGS a month: a rated counter case done before the burst is about
    # a quarter of the department's cases
    in_burst = (gamed == "rating_burst") & counter & (u < BURST_RATINGS / (0.25 * volume)) & (at < burst)
    at = np.where(in_burst, burst + rng.integers(0, 300, n), at)
    known = rated & (at < (month.first_day + month.n_days) * 86400)
    day, clock = at // 86400, at % 86400
    return [
        cal.date_prefix[d] + TIME_OF_DAY[c] if k else ""
        for d, c, k in zip(day.tolist(), clock.tolist(), known.tolist())
    ]


# --------------------------------------------------------------------------
# 2. 12345 hotline tickets
# --------------------------------------------------------------------------


def write_hotline_complaints(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    files = []
    for month in city.months:
        path = target / f"12345工单_{month.yyyymm}.csv"
        rng = _rng(city.seed, "hotline_complaints", month.index)
        # Tickets follow case volume, plus a trickle for every active department.
        expected = (
            HOTLINE_PER_TRANSACTION * city.transactions[:, month.index]
            + HOTLINE_BASE_PER_MONTH * city.valid_share[:, month.index]
        )
        counts = rng.poisson(expected) * ~city.gap_mask["hotline_complaints"][:, month.index]
        day_weights = city.valid_days(month).astype(np.float64)  # 12345 works every day
        _write_daily_csv(
            path,
            HOTLINE_COLUMNS,
            "utf-8-sig",
            "\n",
            counts,
            day_weights,
            rng,
            partial(_hotline_columns, city, month, rng),
            counter,
        )
        files.append(path)
        counter.flush()
    return files, counter.rows


def _hotline_columns(
    city: CityModel,
    month: Month,
    rng: np.random.Generator,
    day_of_month: int,
    departments: np.ndarray,
    u: np.ndarray,
    first_number: int,
) -> list[list]:
    """One time-ordered batch of tickets received on one day, as CSV columns."""
    cal = city.calendar
    day = month.first_day + day_of_month
    n = departments.size
    clock = HOTLINE_CLOCK.seconds(u)
    quality = city.quality[departments, month.index]
    # Tickets are answered in working hours within a few days; poor departments take longer.
    work_seconds = (3600 * rng.lognormal(np.log(14) - 0.25 * quality, 0.8, n)).astype(np.int64) + 60
    finish_day, finish_clock = cal.moment(*cal.advance_work_time(*cal.work_position(day, clock), work_seconds))
    closed = finish_day < cal.extract_day

    category = rng.choice(len(HOTLINE_CATEGORIES), size=n, p=HOTLINE_CATEGORY_SHARE)
    # Complaints and reports against poor departments are substantiated more often.
    accusation = np.isin(category, [1, 4])
    substantiated = np.where(accusation, np.clip(0.3 - 0.15 * quality, 0.05, 0.8), 0.75)
    partly = np.where(accusation, 0.25, 0.2)
    draw = rng.random(n)
    veracity = np.where(draw < substantiated, 0, np.where(draw < substantiated + partly, 1, 2))

    items = city.item_names[city.pick_items(departments, month, rng)]
    template_pick = rng.random(n)
    content = []
    for c, t, item in zip(category.tolist(), template_pick.tolist(), items.tolist()):
        templates = HOTLINE_TEMPLATES[HOTLINE_CATEGORIES[c]]
        content.append(templates[int(t * len(templates))].format(item=item))

    prefix, ticket_prefix = cal.date_prefix[day], f"GD{month.yyyymm}"
    return [
        [f"{ticket_prefix}{k:06d}" for k in range(first_number, first_number + n)],
        city.names[departments].tolist(),
        [prefix + t for t in TIME_OF_DAY[clock].tolist()],
        np.where(closed, cal.date_prefix[finish_day] + TIME_OF_DAY[finish_clock], "").tolist(),
        np.array(HOTLINE_CATEGORIES, dtype=object)[category].tolist(),
        np.array(HOTLINE_VERACITY, dtype=object)[veracity].tolist(),
        content,
    ]


# --------------------------------------------------------------------------
# 3. 万人评机关 surveys
# --------------------------------------------------------------------------


def write_surveys(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    files = []
    for month in city.months:
        rng = _rng(city.seed, "surveys", month.index)
        rows = _survey_rows(city, month, rng)
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("问卷结果")
        sheet.merged_cells.add(f"A1:{get_column_letter(len(SURVEY_COLUMNS))}1")
        sheet.append([f"{month.label}“万人评机关”问卷结果汇总"])
        sheet.append([])
        sheet.append(SURVEY_COLUMNS)
        for row in rows:
            sheet.append(row)
        path = target / f"万人评机关_{month.yyyymm}.xlsx"
        save_workbook(workbook, path, _stamp_after(city.calendar, month), CREATOR)
        files.append(path)
        counter.add(len(rows))
        counter.flush()
    return files, counter.rows


def _survey_rows(city: CityModel, month: Month, rng: np.random.Generator) -> list[list]:
    sizes = city.survey_sizes[:, month.index]
    departments = np.repeat(np.arange(sizes.size), sizes)
    n = departments.size
    # Each response falls on a random day within the department's validity.
    first = np.maximum(city.valid_from[departments], month.first_day) - month.first_day
    last = np.minimum(city.valid_to[departments], month.first_day + month.n_days - 1) - month.first_day
    day = first + (rng.random(n) * (last - first + 1)).astype(np.int64)

    quality = city.quality[departments, month.index]
    mean = 82 + 5 * quality + rng.normal(0, 7, n)  # respondent's overall impression
    attitude, efficiency, integrity = (
        np.clip(np.rint(mean + shift + rng.normal(0, 4, n)), 0, 100).astype(int) for shift in (0.0, -2.0, 2.0)
    )
    overall = np.clip(np.rint((attitude + efficiency + integrity) / 3 + rng.normal(0, 3, n)), 0, 100).astype(int)
    suggestion = np.where(
        overall >= 85,
        _pick(SURVEY_GOOD, rng, n),
        np.where(overall >= 70, _pick(SURVEY_NEUTRAL, rng, n), _pick(SURVEY_BAD, rng, n)),
    )
    suggestion = np.where(rng.random(n) < 0.3, suggestion, None)

    order = np.lexsort((rng.random(n), day))  # by date, shuffled within a day
    dates = city.calendar.date_text[month.first_day + day]
    return [
        [
            f"WJ{month.yyyymm}{k + 1:05d}",
            city.names[departments[i]],
            dates[i],
            int(attitude[i]),
            int(efficiency[i]),
            int(integrity[i]),
            int(overall[i]),
            suggestion[i],
        ]
        for k, i in enumerate(order.tolist())
    ]


# --------------------------------------------------------------------------
# 4. Quarterly leader reviews
# --------------------------------------------------------------------------


def write_leader_reviews(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    files = []
    previous: dict[int, float] = {}
    # Only quarters whose three months are all in the range: a review is written
    # after the quarter ends.
    for first in [m for m in city.months if m.month % 3 == 1 and m.index + 2 < len(city.months)]:
        quarter = (first.month - 1) // 3 + 1
        months = city.months[first.index : first.index + 3]
        last_day = months[-1].first_day + months[-1].n_days - 1
        rng = _rng(city.seed, "leader_reviews", first.index)
        rows = []
        for i, d in enumerate(city.departments):
            if not city.valid_from[i] <= last_day <= city.valid_to[i]:
                continue  # reviewed only if the department exists at quarter end
            quality = city.quality[i, first.index : first.index + 3].mean()
            score = round(float(np.clip(83 + 6 * quality + rng.normal(0, 2.5), 40, 99)), 1)
            remarks = next(r for floor, r in LEADER_REMARKS if score >= floor)
            remark = remarks[int(rng.integers(len(remarks)))]
            if i in previous and score - previous[i] > 3:
                remark += "较上季度有明显进步。"
            elif i in previous and score - previous[i] < -3:
                remark += "较上季度有所下滑，需引起重视。"
            previous[i] = score
            rows.append([d.id, d.name, first.year, quarter, score, remark])
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("领导点评")
        sheet.append(LEADER_COLUMNS)
        for row in rows:
            sheet.append(row)
        path = target / f"领导点评_{first.year}Q{quarter}.xlsx"
        save_workbook(workbook, path, _stamp_after(city.calendar, months[-1]), CREATOR)
        files.append(path)
        counter.add(len(rows))
        counter.flush()
    return files, counter.rows


# --------------------------------------------------------------------------
# 5. Budget execution
# --------------------------------------------------------------------------


def write_budget(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    files = []
    for month in city.months:
        rng = _rng(city.seed, "budget", month.index)
        typical = city.annual_budget / 12 * MONTH_SPENDING[month.month]
        planned = typical * rng.normal(1.0, 0.04, len(city.departments)) * city.valid_share[:, month.index]
        for merged, absorbing in city.mergers:  # the absorbing department inherits the budget
            planned[absorbing] += typical[merged] * city.absorbed_share[merged, month.index]
        execution = np.clip(rng.normal(0.93 + 0.04 * city.quality[:, month.index], 0.12), 0.3, 1.5)
        reporting = city.active_in_month[:, month.index] & ~city.gap_mask["budget"][:, month.index]
        rows = [
            [d.id, d.name, month.label, round(float(planned[i]), 2), round(float(planned[i] * execution[i]), 2)]
            for i, d in enumerate(city.departments)
            if reporting[i]
        ]
        rows.sort(key=lambda row: row[0])

        workbook = Workbook(write_only=True)
        notes = workbook.create_sheet("说明")
        for line in (
            "本表由市财政局根据预算管理一体化系统数据汇总生成。",
            "预算数为部门当月预算安排数，执行数为当月实际支出数。",
            "金额单位：万元，保留两位小数。",
            f"数据截至：{city.calendar.date_text[month.first_day + month.n_days - 1]}。",
        ):
            notes.append([line])
        sheet = workbook.create_sheet("执行情况")
        sheet.append([f"{month.label}部门预算执行情况表"])
        sheet.append(["单位：万元"])
        sheet.append(BUDGET_COLUMNS)
        for row in rows:
            sheet.append(row)
        sheet.append([])
        sheet.append(["注：执行数为当月实际支出。未报送部门不列示。"])
        path = target / f"预算执行_{month.yyyymm}.xlsx"
        save_workbook(workbook, path, _stamp_after(city.calendar, month), CREATOR)
        files.append(path)
        counter.add(len(rows))
        counter.flush()
    return files, counter.rows


# --------------------------------------------------------------------------
# 6. Key project milestones
# --------------------------------------------------------------------------


def write_projects(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    by_month = _milestone_schedule(city)
    files = []
    for month in city.months:
        rows = sorted(by_month.get(month.index, []), key=lambda row: (row[4], row[0]))
        path = target / f"重点项目_{month.yyyymm}.csv"
        _write_csv(path, PROJECT_COLUMNS, rows)
        files.append(path)
        counter.add(len(rows))
        counter.flush()
    return files, counter.rows


def _milestone_schedule(city: CityModel) -> dict[int, list[list[str]]]:
    """Milestone rows keyed by the month they are planned in.

    Each project's milestones are one to three months apart, so a department
    with at most four projects never has more than four rows in a month.
    """
    cal = city.calendar
    rng = _rng(city.seed, "projects")
    extract = cal.dates[cal.extract_day]
    by_month: dict[int, list[list[str]]] = {}
    for i, d in enumerate(city.departments):
        low, high = GROUP_PROJECTS[d.peer_group]
        templates = PROJECT_TEMPLATES[d.peer_group]
        count = min(int(rng.integers(low, high + 1)), len(templates))
        for p, t in enumerate(rng.permutation(len(templates))[:count].tolist()):
            suffix, kind = templates[t]
            # Projects may have started before the range; earlier milestones are dropped.
            month_index = int(rng.integers(-3, max(len(city.months) - 2, 1)))
            for milestone in MILESTONES[kind]:
                day_draw, delay_noise, stall_draw = rng.random(), rng.standard_normal(), rng.random()
                if 0 <= month_index < len(city.months):
                    month = city.months[month_index]
                    planned_day = month.first_day + int(day_draw * month.n_days)
                    if city.valid_from[i] <= planned_day <= city.valid_to[i]:
                        quality = city.quality[i, month_index]
                        weakness = max(0.0, -quality)
                        delay = round(-2 - 8 * quality + delay_noise * (8 + 4 * weakness))
                        planned = cal.dates[planned_day]
                        actual = planned + dt.timedelta(days=delay)
                        stalled = stall_draw < 0.03 + 0.05 * weakness
                        done = "" if stalled or actual >= extract else actual.isoformat()
                        by_month.setdefault(month_index, []).append(
                            [
                                f"XM-{d.id}-{p + 1:02d}",
                                d.id,
                                d.short_name + suffix,
                                milestone,
                                planned.isoformat(),
                                done,
                            ]
                        )
                month_index += int(rng.integers(1, 4))
    return by_month


# --------------------------------------------------------------------------
# 7. Bonus / penalty adjustments
# --------------------------------------------------------------------------


def write_adjustments(city: CityModel, target: Path, report: Report) -> tuple[list[Path], int]:
    counter = _ProgressCounter(report)
    by_month = _adjustment_events(city)
    files = []
    for month in city.months:
        rows = sorted(by_month.get(month.index, []), key=lambda row: (row[0], row[1]))
        path = target / f"加减分_{month.yyyymm}.csv"
        _write_csv(path, ADJUSTMENT_COLUMNS, rows, encoding="gbk")
        files.append(path)
        counter.add(len(rows))
        counter.flush()
    return files, counter.rows


def _adjustment_events(city: CityModel) -> dict[int, list[list[str]]]:
    """A few bonus/penalty rows a month, plus exactly one 一票否决 overall."""
    rng = _rng(city.seed, "adjustments")
    by_month: dict[int, list[list[str]]] = {}
    for month in city.months:
        active = np.flatnonzero(city.active_in_month[:, month.index])
        quality = city.quality[active, month.index]
        for _ in range(1 + int(rng.poisson(1.5))):
            bonus = rng.random() < 0.55
            # Good departments earn bonuses, weak ones collect penalties.
            weight = np.exp((0.9 if bonus else -0.9) * quality)
            i = int(active[rng.choice(active.size, p=weight / weight.sum())])
            points = rng.choice(BONUS_POINTS if bonus else PENALTY_POINTS)
            reason = BONUS_REASONS if bonus else PENALTY_REASONS
            by_month.setdefault(month.index, []).append(
                [
                    city.ids[i],
                    "加分" if bonus else "减分",
                    f"{points:g}",
                    reason[int(rng.integers(len(reason)))],
                    _document_number(month, rng),
                ]
            )

    poor = city.departments_with("poor") or [int(np.argmin(city.quality.mean(axis=1)))]
    vetoed = poor[0]
    interior = city.months[1:-1] or city.months
    eligible = [m for m in interior if city.active_in_month[vetoed, m.index]] or [
        m for m in city.months if city.active_in_month[vetoed, m.index]
    ]
    month = eligible[int(rng.integers(len(eligible)))]
    group = city.departments[vetoed].peer_group
    reason = VETO_REASONS["safety" if group in ("执法监管类", "经济发展类", "窗口服务类") else "discipline"]
    by_month.setdefault(month.index, []).append(
        [city.ids[vetoed], "一票否决", "", reason, _document_number(month, rng)]
    )
    return by_month


def _document_number(month: Month, rng: np.random.Generator) -> str:
    prefix = DOCUMENT_PREFIXES[int(rng.integers(len(DOCUMENT_PREFIXES)))]
    return f"{prefix}〔{month.year}〕{int(rng.integers(1, 160))}号"
